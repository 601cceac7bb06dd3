"""Shared fixtures: a real Asterisk for tests marked ``@pytest.mark.asterisk``.

``asterisk_lab`` (session) is the chroot lab of tests/labs/asterisk_lab.py, or, with
``TWIML_TEST_PBX=compose`` and a reachable Docker engine, the compose stack of
docker/compose.yml. There are no skips: if Asterisk cannot start, the tests that need it fail.

``freeswitch_real`` (session) is a real FreeSWITCH 1.10.12: the build of
docker/provision-freeswitch.sh started on this host (tests/labs/freeswitch_local.py), or, with
``TWIML_TEST_FREESWITCH=compose`` and a reachable Docker engine, the compose stack's FreeSWITCH.
The ESL test server (tests/support/esl_server/) serves only the tests of what a real switch cannot
be made to do on demand (hostile frames, lost connections, exact fault timing).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from asterisk_lab import (
    REPO_ROOT,
    AmiEventLog,
    AsteriskLab,
    AsteriskPbx,
    ComposeAsterisk,
    connect_ami,
    default_root,
    provision_root,
)

# freeswitch_lab is imported inside the fixtures that use it: it imports adapter_harness, which
# pytest must import first, as a plugin (assertion rewriting).
if TYPE_CHECKING:
    from freeswitch_lab import FreeSwitchStack

COMPOSE_FILE = REPO_ROOT / "docker" / "compose.yml"

# Fixtures that live beside their helpers: `app`, `adapter` (tests/support/adapter_harness.py);
# postgres_lab, postgres_url, db_url (tests/labs/postgres_lab.py); the kill tests' callback
# `receiver` (tests/support/fault_checks.py).
pytest_plugins = ["adapter_harness", "postgres_lab", "fault_checks"]


def _compose_requested() -> bool:
    return os.environ.get("TWIML_TEST_PBX", "") == "compose"


def _docker_engine_reachable() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, timeout=15, check=False)
    except subprocess.TimeoutExpired:
        return False
    return probe.returncode == 0


def _compose_path(variable: str, default: str) -> Path:
    """A host folder named like compose.yml does: relative paths start at docker/."""
    return (COMPOSE_FILE.parent / os.environ.get(variable, default)).resolve()


_MARKED: dict[str, set[str]] = {"freeswitch": set(), "asterisk": set()}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the real FreeSWITCH is marked ``freeswitch`` (``-m freeswitch``);
    the marked tests are remembered for the summary."""
    for item in items:
        if "freeswitch_real" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.freeswitch)
        for marker, nodeids in _MARKED.items():
            if item.get_closest_marker(marker) is not None:
                nodeids.add(item.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The count of tests that ran against a real FreeSWITCH and a real Asterisk, by outcome."""
    for marker, what in (("freeswitch", "a real FreeSWITCH 1.10.12"),
                         ("asterisk", "a real Asterisk 22")):
        counts: dict[str, int] = {}
        for outcome in ("passed", "failed", "error", "skipped"):
            for report in terminalreporter.stats.get(outcome, []):
                if report.nodeid in _MARKED[marker] and (report.when == "call"
                                                         or outcome != "passed"):
                    counts[outcome] = counts.get(outcome, 0) + 1
        if counts:
            summary = ", ".join(f"{n} {outcome}" for outcome, n in counts.items())
            terminalreporter.write_line(f"tests against {what}: {summary}")


def pytest_report_header(config: pytest.Config) -> str:
    if _compose_requested():
        if _docker_engine_reachable():
            return f"asterisk: compose stack {COMPOSE_FILE}"
        return "asterisk: TWIML_TEST_PBX=compose but no Docker engine; using the chroot lab"
    return f"asterisk: chroot lab in {default_root()}"


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    """pytest-docker: our compose file (only used with TWIML_TEST_PBX=compose)."""
    return str(COMPOSE_FILE)


@pytest.fixture(scope="session")
def asterisk_lab(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AsteriskPbx]:
    """A running Asterisk 22 with AMI, the [twiml] dialplan and the test callers."""
    if _compose_requested() and _docker_engine_reachable():
        # Must exist before `docker compose up`; compose.yml reads the same variables.
        local = _compose_path("TWIML_ASTERISK_LOCAL", "../var/asterisk-local")
        spool = _compose_path("TWIML_SPOOL_DIR", "../var/spool")
        ComposeAsterisk.prepare_local(local)
        spool.mkdir(parents=True, exist_ok=True)
        services = request.getfixturevalue("docker_services")  # runs `up --build --wait`
        pbx = ComposeAsterisk(
            compose_file=COMPOSE_FILE,
            project=request.getfixturevalue("docker_compose_project_name"),
            ami_port=services.port_for("asterisk", 5038),
            ami_secret=os.environ.get("TWIML_AMI_SECRET", "twiml-dev-secret"),
            spool_dir_local=spool,
        )
        services.wait_until_responsive(check=lambda: _answers(pbx), timeout=60.0, pause=0.5)
        yield pbx
        return
    root = default_root()
    provision_root(root)
    with AsteriskLab(root, tmp_path_factory.mktemp("asterisk")) as lab:
        yield lab


def _answers(pbx: AsteriskPbx) -> bool:
    try:
        pbx.cli("core waitfullybooted")
    except RuntimeError:
        return False
    return True


@pytest.fixture
async def ami(asterisk_lab: AsteriskPbx) -> AsyncIterator[Any]:
    """The test side's AMI connection (a logged-in panoramisk Manager, events on).

    After the test every channel is hung up, so no call leaks into the next test.
    """
    manager = await connect_ami(asterisk_lab)
    try:
        yield manager
    finally:
        manager.close()
        await asyncio.to_thread(asterisk_lab.hangup_all)


@pytest.fixture
def ami_events(ami: Any) -> AmiEventLog:
    """Every event the ``ami`` connection receives from now on, with ``wait_for``."""
    return AmiEventLog(ami)


# --- FreeSWITCH: the local build, or the compose service (profile "freeswitch") -------------


def _freeswitch_compose_requested() -> bool:
    return os.environ.get("TWIML_TEST_FREESWITCH", "") == "compose"


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    """pytest-docker's setup commands: its default (``up --build --wait``: the default services,
    i.e. asterisk), unless ``TWIML_TEST_FREESWITCH=compose``; then the freeswitch service too
    (and asterisk only if ``TWIML_TEST_PBX=compose``), built from ../shared/pbx-sources (or
    TWIML_FREESWITCH_SOURCES) by docker/provision-freeswitch.sh, as the local build is; BuildKit's
    cache makes an unchanged rebuild quick."""
    if not _freeswitch_compose_requested():
        return ["up --build --wait"]
    from freeswitch_lab import FreeSwitchStack

    FreeSwitchStack.prepare_host(COMPOSE_FILE.parent)  # before `up`: spool folder, its owner
    asterisk = ["up --build --wait"] if _compose_requested() else []
    return [*asterisk, "--profile freeswitch up --build --wait freeswitch"]


@pytest.fixture(scope="session")
def docker_cleanup() -> list[str]:
    """pytest-docker's clean-up: ``down -v``, with the freeswitch profile when it was started
    (``down`` leaves the containers of profiles it is not given)."""
    if not _freeswitch_compose_requested():
        return ["down -v"]
    return ["--profile freeswitch down -v"]


@pytest.fixture(scope="session")
def freeswitch_real(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FreeSwitchStack]:
    """A real FreeSWITCH 1.10.12, up and ready, for the session: the build of
    docker/provision-freeswitch.sh started on this host (tests/labs/freeswitch_local.py), or, with
    ``TWIML_TEST_FREESWITCH=compose`` and a reachable Docker engine, the compose stack's
    FreeSWITCH. There are no skips: if FreeSWITCH cannot start, the tests that need it fail."""
    from freeswitch_lab import FreeSwitchStack

    if _freeswitch_compose_requested() and _docker_engine_reachable():
        services = request.getfixturevalue("docker_services")  # runs docker_setup's commands
        stack = FreeSwitchStack.from_environment(COMPOSE_FILE.parent)
        services.wait_until_responsive(check=stack.is_ready, timeout=60.0, pause=0.5)
        yield stack
        return
    from freeswitch_local import LocalFreeSwitch

    with LocalFreeSwitch.for_session(tmp_path_factory.mktemp("freeswitch")) as stack:
        yield stack
