"""docker/: the compose stack and the images, checked as files (this machine and CI have no
Docker engine, so nothing here builds or runs a container): every file they name exists, the
adapter image installs what setup.cfg declares and the programs the adapter runs, and the
Asterisk image's pjsip.conf is the trunk example the test lab loads."""

from __future__ import annotations

import configparser
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from asterisk_lab import PJSIP_EXAMPLE, render_pjsip_conf

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yml"
RUNTIME_DATA = "../var/"  # host folders the stack creates (spool, local dialplan): not shipped


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def with_defaults(value: str) -> str:
    """``${NAME:-default}`` → ``default`` (what compose uses with nothing set)."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_every_file_the_compose_stack_mounts_or_builds_exists() -> None:
    checked = 0
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = with_defaults(volume).split(":")[0]
            if not source.startswith((".", "/")) or source.startswith(RUNTIME_DATA):
                continue  # a named volume, or a runtime folder of ../var
            if "pbx-sources" in source:
                continue
            assert (DOCKER / source).exists(), f"{name}: {volume}"
            checked += 1
        build = service.get("build")
        if isinstance(build, str):
            build = {"context": build}
        if build:
            context = DOCKER / build["context"]
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            assert dockerfile.is_file(), f"{name}: {dockerfile}"
            for extra, path in build.get("additional_contexts", {}).items():
                if extra != "pbx-sources":  # the upstream tarballs, beside the checkout
                    assert (DOCKER / with_defaults(path)).is_dir(), f"{name}: {extra}"
            checked += 1
    assert checked == 7  # 4 mounts, 3 builds: a new one is checked here too


def dockerfile_copies(dockerfile: Path) -> list[str]:
    """The sources of every ``COPY`` taken from the build context (not ``--from``, not heredocs)."""
    sources: list[str] = []
    for line in dockerfile.read_text().splitlines():
        if not line.startswith("COPY ") or "--from=" in line or "<<" in line:
            continue
        words = [w for w in line.split()[1:] if not w.startswith("--")]
        sources += words[:-1]
    return sources


@pytest.mark.parametrize(("dockerfile", "context"), [
    (DOCKER / "adapter" / "Dockerfile", REPO),
    (DOCKER / "asterisk" / "Dockerfile", DOCKER / "asterisk"),
    (DOCKER / "freeswitch" / "Dockerfile", DOCKER / "freeswitch"),
])
def test_every_file_a_dockerfile_copies_exists(dockerfile: Path, context: Path) -> None:
    sources = dockerfile_copies(dockerfile)
    assert sources
    for source in sources:
        assert (context / source).exists(), f"{dockerfile}: COPY {source}"


def test_the_adapter_image_installs_what_setup_cfg_declares() -> None:
    """The package itself from setup.cfg (its install_requires and every extra but the test one:
    the image transcribes with the local engine), on the Python
    setup.cfg targets, with the programs the adapter runs (ffmpeg, espeak-ng)."""
    text = (DOCKER / "adapter" / "Dockerfile").read_text()
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    target = setup["mypy"]["python_version"]
    assert re.search(rf"^FROM python:{re.escape(target)}-slim-bookworm$", text, re.M)
    assert setup["options"]["python_requires"] == f">={target}"
    assert {"setup.cfg", "pyproject.toml", "adapter"} <= set(
        dockerfile_copies(DOCKER / "adapter" / "Dockerfile"))
    (install,) = re.findall(r"pip install (.*)", text)
    runtime_extras = [e for e in setup["options.extras_require"] if e != "test"]
    assert install.split()[-1].strip("\"'") == (
        f".[{','.join(runtime_extras)}]" if runtime_extras else ".")
    apt = re.search(r"apt-get install -y --no-install-recommends ([^\\&]+)", text)
    assert apt is not None
    assert set(apt.group(1).split()) >= {"ffmpeg", "espeak-ng"}
    programs = set(re.findall(r'"(ffmpeg|espeak-ng|sox)"', "".join(
        p.read_text() for p in (REPO / "adapter").rglob("*.py"))))
    assert programs <= set(apt.group(1).split())


def test_the_adapter_service_uses_keys_the_config_knows() -> None:
    from adapter.config.environment import NUMBERS_VARIABLE, env_variable
    from adapter.config.loading import SCHEMA

    known = {env_variable(f"{s}.{k}") for s, keys in SCHEMA.items() for k in keys}
    known.add(NUMBERS_VARIABLE)
    environment = compose()["services"]["adapter"]["environment"]
    assert set(environment) <= known
    mounted = [with_defaults(v).split(":")[1] for v in compose()["services"]["asterisk"]["volumes"]]
    assert environment["TWIML_ADAPTER_ASTERISK_SPOOL_DIR"] in mounted


def test_the_asterisk_image_loads_the_trunk_example_as_the_lab_does(tmp_path: Path) -> None:
    """The compose Asterisk loads PJSIP (modules.conf) and its start script renders pjsip.conf
    from the mounted dialplan/asterisk/pjsip_twiml.conf: the lab's file but for the bind."""
    service = compose()["services"]["asterisk"]
    assert "../dialplan/asterisk:/etc/asterisk/twiml:ro" in service["volumes"]
    modules = (DOCKER / "asterisk" / "etc" / "modules.conf").read_text()
    assert "load => res_pjsip.so" in modules and "load => chan_pjsip.so" in modules
    assert ("twiml-render-pjsip /etc/asterisk/twiml/pjsip_twiml.conf >/etc/asterisk/pjsip.conf"
            in (DOCKER / "asterisk" / "Dockerfile").read_text())
    env = {"PATH": "/usr/bin:/bin", "SIP_BIND": "127.0.0.1:5999",
           "SIP_TRUNK_MATCH": "127.0.0.1"}
    rendered = subprocess.run([str(DOCKER / "asterisk" / "render-pjsip.sh"), str(PJSIP_EXAMPLE)],
                              capture_output=True, text=True, env=env, check=True).stdout
    assert rendered == render_pjsip_conf(PJSIP_EXAMPLE.read_text(), 5999)
    published = {p.split(":", 1)[1] for p in service["ports"]}
    assert "5060:5060/udp" in {with_defaults(p) for p in published}
    broken = tmp_path / "pjsip.conf"
    broken.write_text(PJSIP_EXAMPLE.read_text().replace("bind = 127.0.0.1:5060", "bind = x"))
    failed = subprocess.run([str(DOCKER / "asterisk" / "render-pjsip.sh"), str(broken)],
                            capture_output=True, text=True, env=env)
    assert failed.returncode == 1 and "no single line" in failed.stderr
