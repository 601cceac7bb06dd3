"""Row 2 of issue 13: from the PBX's recording-stop event to the recording's status callback
arriving at a local receiver, at 1, 50 and 200 concurrent calls, each starting a recording
(``<Start><Recording>``, then ``<Pause>``) and stopping it when its caller hangs up.

Simulated at the protocol edge: the ESL test server (bench/fake_pbx.py: FreeSWITCH 1.10.12's
bytes over real sockets, real WAV files) places the calls on the adapter's outbound socket; the
stop is the moment it writes RECORD_STOP to the call's socket. The adapter (FreeSWITCH driver,
SQLite, the durable outbox, aiohttp) runs in this process, beside the ESL test server and the
receiver, so the figures include their share of the one event loop. Hang-ups are spread evenly
at `STOP_INTERVAL_S` (100 stops/s), every call having its recording running first.

Each size up to `SHIPPED_UP_TO` runs twice, interleaved: with the adapter's audio
post-processing (`recordings.finalise`) stubbed out (the target: p99 ≤ 50 ms at 200 calls;
the callers are silent then, so the ESL test server's tone synthesis stays out of the loop),
and as shipped; the post-processing time itself (finalise in its worker thread) is reported
separately. Larger sizes run stubbed only.

``python -m bench.callback_latency [--quick]`` prints the rows."""

from __future__ import annotations

import argparse
import asyncio
import audioop
import statistics
import tempfile
import time
import wave
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.fake_pbx import (
    FROM,
    TO,
    CallbackReceiver,
    adapter_environ,
    fake_freeswitch,
    outbound_address,
    recording_sid,
)
from bench.rows import Ratio, Row

FULL_SIZES, QUICK_SIZES = (1, 50, 200), (1, 10)
FULL_RUNS, QUICK_RUNS = 5, 1
# The run budget (100 s for the row) holds one run of each size above 1 on this box: every
# call costs the one loop its set-up and its end, so a 200-call run alone takes about a
# minute. Sizes above 1 run once; above 50 only stubbed (post-processing is reported from the
# smaller sizes, where it runs as shipped).
SHIPPED_UP_TO = 50
STOP_INTERVAL_S = 0.01
RECORDED_S = 0.5  # how long every recording runs before the first hang-up
TARGET_P99_S = 0.050
READY_WITHIN_S = 120.0
LATENCY_CAUSE = (
    "measured: no callback lost, no pool error, no lease run out at any size. The latency grows "
    "with the calls because the one loop serves every call's set-up, events and SQL in FIFO "
    "order, so a stop's callback waits behind that backlog; the outbox's own share (enqueue, "
    "claim, POST, settle) is about 20 ms at 1 call. p99 at 200 calls: 7.9 s (session 6), about 2 "
    "s (session 7: each write's statements built once, the outbox's hot statements on the "
    "driver), about 0.2 s (session 8: the store's writes group-committed, those of one shape as "
    "one executemany, adapter/db/group_commit.py). What would cut it further: the outbox's "
    "enqueue in the same shared transaction as the recording's own update (today a second commit "
    "per callback), and serving a stop before new calls' set-up")


@dataclass
class LatencyRun:
    calls: int
    stubbed: bool
    latencies_s: list[float] = field(default_factory=list)
    postprocess_s: list[float] = field(default_factory=list)
    missing: int = 0


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("inf")
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _make_stereo(path: Path | None) -> None:
    """The ESL test server writes one channel where FreeSWITCH writes the stereo file the
    adapter asks for: the same samples on both channels (not timed)."""
    if path is None or not path.exists():
        return
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1:
            return
        rate, width, data = wav.getframerate(), wav.getsampwidth(), wav.readframes(-1)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(audioop.tostereo(data, width, 1, 1))


@contextmanager
def _instrumented(stops: dict[str, float], postprocess: dict[str, float],
                  stubbed: bool) -> Iterator[None]:
    """Note when the ESL test server fires each RECORD_STOP and how long each finalise takes
    (or replace finalise with a stub that returns a 1 s shape at once)."""
    from esl_server.call import FakeCall

    from adapter.interpreter import call_recording
    from adapter.recordings.media import AudioInfo

    real_emit, real_finalise = FakeCall.emit, call_recording.finalise

    def emit(call: Any, name: str, extra: Any = (), *args: Any, **kwargs: Any) -> None:
        if name == "RECORD_STOP":
            sid = recording_sid(dict(extra).get("Record-File-Path", ""))
            if sid is not None:
                stops.setdefault(sid, time.monotonic())
        real_emit(call, name, extra, *args, **kwargs)

    def finalise(segments: Any, target: Path, channels: int, **kwargs: Any) -> Any:
        started = time.monotonic()
        if stubbed:
            result = AudioInfo(channels=channels, sample_rate=8000, sample_width=2, frames=8000)
        else:
            for segment in segments:
                _make_stereo(segment.stereo_file)
            started = time.monotonic()
            result = real_finalise(segments, target, channels, **kwargs)
        postprocess[target.stem] = time.monotonic() - started
        return result

    FakeCall.emit = emit  # type: ignore[method-assign]
    call_recording.finalise = finalise  # type: ignore[assignment]
    try:
        yield
    finally:
        FakeCall.emit = real_emit  # type: ignore[method-assign]
        call_recording.finalise = real_finalise


async def _until(check: Any, within: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)  # the ESL test server has no event for this: poll
    return True


async def one_run(calls: int, stubbed: bool, work: Path) -> LatencyRun:
    from adapter_harness import AUTH_TOKEN
    from twilio.twiml.voice_response import VoiceResponse
    from twiml_app import TwimlApp, start_recording

    from adapter.config import load_config
    from adapter.service import Adapter

    stops: dict[str, float] = {}
    postprocess: dict[str, float] = {}
    receiver = CallbackReceiver()
    await receiver.start()
    app = TwimlApp(AUTH_TOKEN)
    await app.start()
    response = VoiceResponse()
    # One track: the ESL test server writes no stereo files.
    response.append(start_recording(recording_status_callback=receiver.url,
                                    recording_status_callback_event="completed",
                                    track="inbound"))
    response.pause(length=120)
    app.answer("/voice", response)
    run = LatencyRun(calls, stubbed)
    try:
        with _instrumented(stops, postprocess, stubbed):
            async with fake_freeswitch(work) as fs:
                environ = adapter_environ(fs, work / "data", app.url("/voice"))
                adapter = Adapter(load_config(None, environ=environ))
                await adapter.start(serve_http=False)
                try:
                    placed = [fs.place_call(outbound_address(environ), to=TO, from_=FROM)
                              for _ in range(calls)]
                    if stubbed:
                        # Silent callers: the stub ignores the audio, and the ESL test
                        # server's tone synthesis (about 7 ms of this loop per second of
                        # recording, at each stop) would be measured as the adapter's.
                        for call in placed:
                            call.caller_tone_hz = None
                    if not await _until(lambda: all(c.recordings for c in placed),
                                        READY_WITHIN_S):
                        raise RuntimeError("not every call started its recording")
                    await asyncio.sleep(RECORDED_S)  # some audio in every file
                    for call in placed:
                        call.caller_hangup()
                        await asyncio.sleep(STOP_INTERVAL_S)  # the load's shape
                    await _until(lambda: len(receiver.arrived) >= calls, 60 + calls / 10)
                finally:
                    await adapter.stop()
    finally:
        await app.stop()
        await receiver.stop()
    for sid, stopped in stops.items():
        if sid in receiver.arrived and receiver.statuses.get(sid) == "completed":
            run.latencies_s.append(receiver.arrived[sid] - stopped)
        else:
            run.missing += 1
    run.missing += calls - len(stops)
    run.postprocess_s = list(postprocess.values())
    return run


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _span(values: Sequence[float]) -> str:
    return f"{_ms(statistics.median(values))} ({_ms(min(values))}\u2013{_ms(max(values))})"


def rows_for(calls: int, stubbed: list[LatencyRun], shipped: list[LatencyRun]) -> list[Row]:
    p50 = [percentile(r.latencies_s, 0.5) for r in stubbed]
    p99 = [percentile(r.latencies_s, 0.99) for r in stubbed]
    full50 = [percentile(r.latencies_s, 0.5) for r in shipped]
    full99 = [percentile(r.latencies_s, 0.99) for r in shipped]
    work = [statistics.median(r.postprocess_s) for r in shipped if r.postprocess_s]
    work99 = [percentile(r.postprocess_s, 0.99) for r in shipped if r.postprocess_s]
    missing = sum(r.missing for r in stubbed + shipped)
    ratio = Ratio.of([value / TARGET_P99_S for value in p99])
    met = ratio.median <= 1.0 and missing == 0 if calls == max(FULL_SIZES) else missing == 0
    return [Row(
        measured=(f"RECORD_STOP → recording callback at the receiver, {calls} concurrent "
                  "simulated calls (ESL test server, stops at 100/s), post-processing stubbed"),
        against="the 50 ms p99 target (ratio: p99 / 50 ms)",
        figure=(f"p50 {_span(p50)}, p99 {_span(p99)}; as shipped (with post-processing): "
                f"p50 {_span(full50) if full50 else 'not run'}, p99 "
                f"{_span(full99) if full99 else 'not run'}; post-processing alone "
                f"{_span(work) if work else 'n/a'} median, {_span(work99) if work99 else 'n/a'}"
                f" p99; callbacks missing {missing}"),
        ratio=ratio, met=met,
        target=("p99 ≤ 50 ms (ratio ≤ 1); none missing" if calls == max(FULL_SIZES) else
                "none missing (the p99 target is at 200 calls)"),
        note="" if met else LATENCY_CAUSE,
    )]


def measure(sizes: Sequence[int], repeats: int) -> list[Row]:
    results: dict[tuple[int, bool], list[LatencyRun]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-callback-") as scratch:
        for repeat in range(repeats):
            for size in sizes:
                if size > 1 and repeat > 0:
                    continue
                for stubbed in (True, False) if size <= SHIPPED_UP_TO else (True,):
                    work = Path(scratch) / f"{size}-{stubbed}-{repeat}"
                    run = asyncio.run(one_run(size, stubbed, work))
                    results.setdefault((size, stubbed), []).append(run)
    rows: list[Row] = []
    for size in sizes:
        rows += rows_for(size, results[(size, True)], results.get((size, False), []))
    return rows


def run(quick: bool) -> list[Row]:
    """Row 2: 1 call five times, 50 and 200 calls once (quick: 1 and 10, one run)."""
    return measure(*((QUICK_SIZES, QUICK_RUNS) if quick else (FULL_SIZES, FULL_RUNS)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the CI smoke size")
    parser.add_argument("--calls", type=int, action="append")
    parser.add_argument("--runs", type=int)
    args = parser.parse_args()
    found = measure(args.calls, args.runs or QUICK_RUNS) if args.calls else run(args.quick)
    for row in found:
        print(row)
