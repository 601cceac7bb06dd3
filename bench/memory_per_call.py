"""Row 4 of issue 13: the adapter's RSS growth per concurrent active call, at 1,000 and 10,000
simulated calls (quick: 100). On the 2-core box 1,000 take about 6 s and 10,000 about 90 s
(placed 50 at a time, each batch once the last one's recordings run).

The adapter runs in its own process (``twiml-adapter serve``, FreeSWITCH driver, SQLite), as
bench/real_pbx_load.py starts it; the calls come from the ESL test server (bench/fake_pbx.py:
FreeSWITCH 1.10.12's bytes over real sockets) in this process. Each call runs
``<Start><Recording>`` then a long ``<Pause>``; it counts as active once its ``uuid_record``
is running. After a warm-up of `WARM_UP` calls (started and ended, so pools, caches and
imports are in place), RSS is read with no call up, then with all N calls active:
(RSS active - RSS idle) / N. Then every caller hangs up and RSS is read once more, after the
calls ended (what a finished call leaves behind).

``python -m bench.memory_per_call [--quick] [--calls N ...]`` prints the rows."""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.fake_pbx import FROM, TO, adapter_environ, fake_freeswitch, outbound_address
from bench.labs import adapter_process, rss_kib
from bench.rows import Ratio, Row

FULL_SIZES, QUICK_SIZES = (1_000, 10_000), (100,)
FULL_RUNS, QUICK_RUNS = 1, 1
WARM_UP = 20
TARGET_KIB = 64.0
PLACE_BATCH = 50  # calls placed at once (the ESL test server's and the adapter's backlog)
SPARE_FILES = 1_000  # open files beyond one per call: listeners, logs, the database, HTTP


@dataclass(frozen=True)
class MemoryRun:
    calls: int
    idle_kib: int
    active_kib: int
    after_kib: int

    @property
    def per_call_kib(self) -> float:
        return (self.active_kib - self.idle_kib) / self.calls

    @property
    def left_per_call_kib(self) -> float:
        return (self.after_kib - self.idle_kib) / self.calls


async def _until(check: Any, within: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)  # the ESL test server has no event for this: poll
    return True


async def _calls(fs: Any, address: tuple[str, int], count: int) -> list[Any]:
    """`count` calls, placed in batches, each until its recording runs."""
    placed: list[Any] = []
    while len(placed) < count:
        batch = [fs.place_call(address, to=TO, from_=FROM)
                 for _ in range(min(PLACE_BATCH, count - len(placed)))]
        if not await _until(lambda b=batch: all(c.recordings for c in b), 120):
            raise RuntimeError("calls did not start their recordings within 120 s")
        placed += batch
    return placed


async def _hang_up(calls: list[Any]) -> None:
    for call in calls:
        call.caller_hangup()
    if not await _until(lambda: all(c.ended.is_set() for c in calls), 60 + len(calls) / 20):
        raise RuntimeError("calls did not end")


async def one_run(calls: int, work: Path) -> MemoryRun:
    from adapter_harness import AUTH_TOKEN
    from twilio.twiml.voice_response import VoiceResponse
    from twiml_app import TwimlApp, start_recording

    app = TwimlApp(AUTH_TOKEN)
    await app.start()
    response = VoiceResponse()
    response.append(start_recording(track="inbound"))  # one file: the test server's kind
    response.pause(length=3600)
    app.answer("/voice", response)
    try:
        async with fake_freeswitch(work) as fs:
            environ = adapter_environ(fs, work / "data", app.url("/voice"))
            address = outbound_address(environ)
            async with adapter_process(environ, work / "adapter.log") as pid:
                await _hang_up(await _calls(fs, address, WARM_UP))
                idle = rss_kib(pid)
                active_calls = await _calls(fs, address, calls)
                active = rss_kib(pid)
                print(f"measured: {calls} calls, idle {idle} KiB, active {active} KiB, "
                      f"{(active - idle) / calls:.1f} KiB per call", file=sys.stderr, flush=True)
                await _hang_up(active_calls)
                after = rss_kib(pid)
    finally:
        await app.stop()
    return MemoryRun(calls, idle, active, after)


def rows_for(runs: list[MemoryRun]) -> list[Row]:
    calls = runs[0].calls
    ratio = Ratio.of([run.per_call_kib / TARGET_KIB for run in runs])
    per_call = [run.per_call_kib for run in runs]
    left = [run.left_per_call_kib for run in runs]
    return [Row(
        measured=f"adapter RSS growth per concurrent active call, {calls:,} simulated calls "
                 "(ESL test server; <Start><Recording> + <Pause>)",
        against="the 64 KiB per call target (ratio: per call / 64 KiB)",
        figure=(f"{min(per_call):.1f}\u2013{max(per_call):.1f} KiB per active call (idle "
                f"{runs[0].idle_kib / 1024:.0f} MiB, active {runs[0].active_kib / 1024:.0f} "
                f"MiB); left after they ended: {min(left):.1f}\u2013{max(left):.1f} KiB per "
                "call"),
        ratio=ratio, target="≤ 64 KiB per call (ratio ≤ 1)", met=ratio.median <= 1.0,
    )]


def _allow_open_files(calls: int) -> None:
    """Raise this process's open-file limit (the adapter, its child, inherits it) to what
    `calls` sockets need, within the hard limit; RuntimeError when the hard limit is lower."""
    needed = calls + SPARE_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise RuntimeError(f"{calls:,} calls need {needed:,} open files; the hard limit "
                               f"is {hard:,} (ulimit -Hn)")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def measure(sizes: Sequence[int], repeats: int) -> list[Row]:
    _allow_open_files(max(sizes))
    results: dict[int, list[MemoryRun]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as scratch:
        for repeat in range(repeats):
            for size in sizes:
                work = Path(scratch) / f"{size}-{repeat}"
                results.setdefault(size, []).append(asyncio.run(one_run(size, work)))
    return [row for size in sizes for row in rows_for(results[size])]


def run(quick: bool) -> list[Row]:
    """Row 4: 1,000 and 10,000 calls (quick: 100)."""
    return measure(*((QUICK_SIZES, QUICK_RUNS) if quick else (FULL_SIZES, FULL_RUNS)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the CI smoke size")
    parser.add_argument("--calls", type=int, action="append")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    found = measure(args.calls, args.runs) if args.calls else run(quick=args.quick)
    for row in found:
        print(row)
