"""The real PBXs of the tests and an adapter in its own process, for the benchmarks that need
them (bench/real_pbx_load.py): the Asterisk chroot lab and the local FreeSWITCH build of
tests/labs, the adapter started as ``twiml-adapter serve`` would be (environment only), and the
CPU seconds and RSS of a process read from /proc."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
for folder in ("tests/support", "tests/labs"):
    if str(REPO_ROOT / folder) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT / folder))

import aiohttp  # noqa: E402

__all__ = ["adapter_process", "asterisk", "cpu_seconds", "freeswitch", "main_thread_cpu_seconds",
           "rss_kib", "thread_cpu_seconds"]

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

# The child: `twiml-adapter serve`, under cProfile when given a file to write its stats to.
_CHILD = """
import cProfile, sys
from adapter.cli import main
if sys.argv[1]:
    import time
    profile = cProfile.Profile(time.thread_time)
    profile.enable()
    try:
        main(["serve"])
    finally:
        profile.disable()
        profile.dump_stats(sys.argv[1])
else:
    raise SystemExit(main(["serve"]))
"""


def _stat_cpu_seconds(stat: str) -> float:
    """User + system CPU seconds in the text of a /proc stat file (a process's or a thread's)."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` (all its threads) so far."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())


def main_thread_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds so far of process `pid`'s main thread (the adapter's event
    loop runs there)."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/task/{pid}/stat").read_text())


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds of each thread of process `pid`, by "name/tid" (where the CPU goes)."""
    found: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            text = (task / "stat").read_text()
            name = text.split("(", 1)[1].rsplit(")", 1)[0]
            found[f"{name}/{task.name}"] = _stat_cpu_seconds(text)
    return found


def rss_kib(pid: int) -> int:
    """Resident set size of process `pid`, KiB."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE_KIB


@contextlib.contextmanager
def asterisk() -> Iterator[Any]:
    """The Asterisk 22 chroot lab of the tests (root: TWIML_ASTERISK_ROOT), started and
    stopped; `.pid` of the running Asterisk is ``lab._process.pid``."""
    from asterisk_lab import AsteriskLab, default_root, provision_root

    root = default_root()
    provision_root(root)
    with tempfile.TemporaryDirectory(prefix="bench-asterisk-") as work, \
            AsteriskLab(root, Path(work)) as lab:
        yield lab


# The shipped switch.conf.xml allows 200 sessions and 100 new ones a second; N loopback calls
# are 2N sessions, all at once.
_FREESWITCH_LIMITS = {"max-sessions": "2000", "sessions-per-second": "2000"}


@contextlib.contextmanager
def freeswitch() -> Iterator[tuple[Any, int]]:
    """The local FreeSWITCH 1.10.12 build of the tests, started for this run with room for
    the benchmark's calls (`_FREESWITCH_LIMITS`; otherwise the shipped configuration): its
    stack (where it listens) and its pid."""
    from freeswitch_local import LocalFreeSwitch

    class BenchFreeSwitch(LocalFreeSwitch):
        def write_configuration(self) -> None:
            super().write_configuration()
            switch = self.conf / "autoload_configs" / "switch.conf.xml"
            text = switch.read_text(encoding="utf-8")
            for name, value in _FREESWITCH_LIMITS.items():
                text, count = re.subn(rf'(<param name="{name}" value=")[0-9]+"',
                                      rf'\g<1>{value}"', text)
                if count != 1:
                    raise RuntimeError(f"{switch}: no single {name} to raise")
            switch.write_text(text, encoding="utf-8")

    with tempfile.TemporaryDirectory(prefix="bench-freeswitch-") as base:
        local = BenchFreeSwitch.for_session(Path(base))
        with local as stack:
            assert local._process is not None
            yield stack, local._process.pid


@contextlib.asynccontextmanager
async def adapter_process(environ: dict[str, str], log: Path,
                          profile: Path | None = None) -> AsyncIterator[int]:
    """The adapter in a child process (`environ` is its whole configuration), once its
    ``/health`` says it is up; its pid. Stopped with SIGINT (a clean stop) at the end."""
    host, port = environ["TWIML_ADAPTER_HTTP_LISTEN"].rsplit(":", 1)
    with log.open("wb") as output:
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(profile or "")],
            env={**os.environ, **environ}, stdout=output, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, cwd=REPO_ROOT)
    try:
        await _wait_healthy(child, f"http://{host}:{port}/health", log)
        yield child.pid
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
            try:
                await asyncio.to_thread(child.wait, 60)
            except subprocess.TimeoutExpired:
                child.kill()
                await asyncio.to_thread(child.wait)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def _wait_healthy(child: subprocess.Popen[bytes], url: str, log: Path) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    async with aiohttp.ClientSession() as session:
        while True:
            if child.poll() is not None:
                raise RuntimeError(f"the adapter exited with {child.returncode}:\n"
                                   + _tail(log))
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            if loop.time() > deadline:
                raise RuntimeError("the adapter was not healthy within 60 s:\n"
                                   + _tail(log))
            await asyncio.sleep(0.2)  # a new process offers no event to wait for: poll
