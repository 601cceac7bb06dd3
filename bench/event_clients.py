"""The measured side of the event-path benchmark (row 1), one variant per child process:
``python -m bench.event_clients VARIANT EVENTS`` starts its feeder (`bench.feeder`), reads the
whole stream, prints ``RESULT <events> <seconds>`` (from the first byte asked for to the end
marker handled, or the last recording's callback queued).

- ``ami-a``: panoramisk's `Manager` alone, a ``'*'`` handler that counts;
- ``ami-b``: our framing alone (`ami_frames.AmiFrameReader` + `parse_frame`) in a raw Protocol;
- ``ami-c``: the adapter's `AmiClient` (its framed protocol, panoramisk's dispatch, its own
  handlers), with the driver's handling of the recording's events: AsyncAGIStart registers the
  call's RECORD FILE reply, AsyncAGIExec resolves it (`mapping.record_result`), the recording
  becomes ``completed`` and its status callback's parameters are queued; Hangup and
  AsyncAGIEnd release the channel (`AmiClient.channel_gone`);
- ``esl-a``: greenswitch's `InboundESL` alone (gevent in the main thread), ``'*'`` counting;
- ``esl-b``: our framing alone (`protocol.EslParser` + `EslFrame.event`) in a raw Protocol;
- ``esl-c``: the adapter's ESL path: `OutboundListener` (gevent thread, `GeventBridge`), one
  `FreeSwitchCall` per call socket, its recordings started through `start_call_recording`
  (api answered ``+OK``), each awaited with `call_recording_final`, then ``completed`` and its
  status callback's parameters queued.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from bench import streams

ESL_CALLS = 20


def _feeder(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "bench.feeder", *args],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _recording_row() -> Any:
    from adapter.db.store import RecordingRow

    now = datetime.now(UTC)
    return RecordingRow(sid="RE" + "0" * 32, account_sid="AC" + "a" * 32,
                        call_sid="CA" + "0" * 32, status="in-progress",
                        source="StartCallRecording", channels=2, start_time=now,
                        date_created=now, date_updated=now,
                        status_callback="https://app.example.com/rec")


class _Callbacks:
    """The recordings' state changes and their queued status callbacks (in memory: the durable
    outbox's own cost is row 3)."""

    def __init__(self, expected: int) -> None:
        import adapter.interpreter  # noqa: F401  (status_callback is imported through it first)
        from adapter.recordings.status_callback import status_callback_params

        self._params = status_callback_params
        self.queue: asyncio.Queue[list[tuple[str, str]]] = asyncio.Queue()
        self.template = _recording_row()
        self.expected = expected
        self.done = asyncio.Event()
        self.count = 0

    def completed(self, recording_sid: str, duration: int) -> None:
        row = dataclasses.replace(self.template, sid=recording_sid, status="completed",
                                  duration=duration)
        self.queue.put_nowait(self._params(row, "completed", f"https://adapter/{recording_sid}",
                                           duration=duration))

    async def drain(self) -> None:
        while self.count < self.expected:
            await self.queue.get()
            self.count += 1
        self.done.set()


# --- AMI ---------------------------------------------------------------------------------------

async def _ami_a(port: int, events: int) -> float:
    from panoramisk import Manager

    end = asyncio.Event()
    seen = 0

    def count(_manager: Any, message: Any) -> None:
        nonlocal seen
        seen += 1
        if message.get("Event") == streams.END_EVENT:
            end.set()

    manager = Manager(host="127.0.0.1", port=port, username="bench", secret="bench",
                      events="on", ping_delay=0)
    manager.register_event("*", count)
    await manager.connect()
    started = time.perf_counter()
    manager.send_action({"Action": "BenchStart"})
    await end.wait()
    seconds = time.perf_counter() - started
    manager.close()
    return seconds


async def _ami_b(port: int, events: int) -> float:
    from adapter.pbx.asterisk.ami_frames import AmiFrameReader, Dropped, parse_frame

    loop = asyncio.get_running_loop()
    end = asyncio.Event()

    class Reader(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.reader = AmiFrameReader()
            transport.write(b"Action: Login\r\nUsername: bench\r\nSecret: bench\r\n"
                            b"ActionID: 1\r\n\r\nAction: BenchStart\r\nActionID: 2\r\n\r\n")

        def data_received(self, data: bytes) -> None:
            for item in self.reader.feed(data):
                if isinstance(item, Dropped):
                    continue
                message = parse_frame(item)
                if message is not None and message.get("Event") == streams.END_EVENT:
                    end.set()

    started = time.perf_counter()
    transport, _ = await loop.create_connection(Reader, "127.0.0.1", port)
    await end.wait()
    seconds = time.perf_counter() - started
    transport.close()
    return seconds


async def _ami_c(port: int, events: int) -> float:
    from adapter.pbx.asterisk import mapping
    from adapter.pbx.asterisk.agi import AgiReply
    from adapter.pbx.asterisk.ami import AmiClient

    calls = max(1, events // streams.AMI_EVENTS_PER_CALL)
    callbacks = _Callbacks(calls)
    client = AmiClient(host="127.0.0.1", port=port, username="bench", secret="bench")
    loop = asyncio.get_running_loop()
    waiters: dict[str, tuple[str, asyncio.Future[AgiReply]]] = client._agi_waiters

    def on_start(event: Any) -> None:
        channel = event.get("Channel") or ""
        index = int(channel.rsplit("-", 1)[1], 16)
        command_id = streams.ami_command_id(index)
        future: asyncio.Future[AgiReply] = loop.create_future()
        waiters[command_id] = (channel, future)  # as AmiClient.agi does for RECORD FILE

        def finished(done: asyncio.Future[AgiReply]) -> None:
            waiters.pop(command_id, None)
            result = mapping.record_result(done.result(), max_length=30, elapsed=9.5,
                                           silence_timeout=5)
            callbacks.completed(f"RE{index:032x}", 7 if result else 0)

        future.add_done_callback(finished)

    def on_gone(event: Any) -> None:
        client.channel_gone(event.get("Channel") or "")

    client.on("AsyncAGIStart", on_start)
    client.on("Hangup", on_gone)
    client.on("AsyncAGIEnd", on_gone)
    await client.connect()
    drain = asyncio.ensure_future(callbacks.drain())
    started = time.perf_counter()
    await client.action({"Action": "BenchStart"})
    await drain
    seconds = time.perf_counter() - started
    await client.close()
    return seconds


# --- ESL ---------------------------------------------------------------------------------------

def _esl_a(port: int, events: int) -> float:
    import gevent
    import gevent.event
    from greenswitch.esl import InboundESL

    end = gevent.event.Event()

    def count(event: Any) -> None:
        if event.headers.get("Event-Subclass") == "bench::end":
            end.set()

    esl = InboundESL("127.0.0.1", port, "ClueCon", timeout=30)
    esl.connect()
    esl.register_handle("*", count)
    started = time.perf_counter()
    esl.send("event plain ALL")
    end.wait()
    return time.perf_counter() - started  # greenswitch's stop() can hang: the feeder is killed


async def _esl_b(port: int, events: int) -> float:
    from adapter.pbx.freeswitch.protocol import EslParser

    loop = asyncio.get_running_loop()
    end = asyncio.Event()
    started = 0.0

    class Reader(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.parser = EslParser()
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            nonlocal started
            for frame in self.parser.feed(data):
                kind = frame.content_type
                if kind == "auth/request":
                    self.transport.write(b"auth ClueCon\n\n")
                elif kind == "command/reply" and frame.reply_text == "+OK accepted":
                    started = time.perf_counter()
                    self.transport.write(b"event plain ALL\n\n")
                elif kind == "text/event-plain":
                    event = frame.event()
                    if event.get("Event-Subclass") == "bench::end":
                        end.set()

    transport, _ = await loop.create_connection(Reader, "127.0.0.1", port)
    await end.wait()
    seconds = time.perf_counter() - started
    transport.close()
    return seconds


async def _esl_c(events: int) -> float:
    from adapter.pbx.base import CallRecordingRequest, PathMap
    from adapter.pbx.freeswitch.bridge import GeventBridge
    from adapter.pbx.freeswitch.call import FreeSwitchCall
    from adapter.pbx.freeswitch.listener import CallLink, OutboundListener
    from adapter.pbx.freeswitch.settings import FreeSwitchSettings

    recordings = max(1, events // streams.ESL_EVENTS_PER_RECORDING // ESL_CALLS)
    callbacks = _Callbacks(ESL_CALLS * recordings)
    spool_dir = Path(tempfile.mkdtemp(prefix="twiml-bench-spool-")).resolve()
    settings = FreeSwitchSettings(listen_host="127.0.0.1", listen_port=0,
                                  esl_host="127.0.0.1", esl_port=1, esl_password="x",
                                  spool=PathMap(spool_dir, PurePosixPath(spool_dir)))
    bridge = GeventBridge()
    calls: dict[int, FreeSwitchCall] = {}
    tasks: set[asyncio.Task[None]] = set()

    async def api(_command: str) -> str:
        return "+OK Success\n"

    async def record(call: FreeSwitchCall, index: int, rec: int) -> None:
        key = streams.recording_key(index, rec)
        request = CallRecordingRequest(key=key, directory=spool_dir / call.uuid, inbound=True,
                                       outbound=True)
        handle = await call.start_call_recording(request)
        if await call.call_recording_final(handle, 600):
            callbacks.completed(key, 7)

    async def run_call(call: FreeSwitchCall, index: int) -> None:
        # The recordings are started (registered) before FreeSWITCH sends their events, as
        # with a real ``uuid_record``: the feeder streams once this command reaches it.
        finals = [asyncio.ensure_future(record(call, index, rec)) for rec in range(recordings)]
        await asyncio.sleep(0)
        await bridge.call(call.link.command, "bench start")
        await asyncio.gather(*finals)

    class Sink:
        def call_opened(self, link: CallLink, data: Any) -> None:
            call = FreeSwitchCall(uuid=link.uuid, link=link, bridge=bridge, settings=settings,
                                  api=api)
            calls[link.id] = call
            index = next(i for i in range(ESL_CALLS) if streams.call_uuid(i) == link.uuid)
            task = asyncio.ensure_future(run_call(call, index))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        def call_ready(self, link_id: int) -> None:
            pass

        def call_closed(self, link_id: int) -> None:
            call = calls.pop(link_id, None)
            if call is not None:
                call.on_closed()

    listener = OutboundListener("127.0.0.1", 0, sink=Sink(), bridge=bridge,
                                setup_timeout=60, command_timeout=60)
    _host, port = await bridge.start(listener.start, within=10)
    drain = asyncio.ensure_future(callbacks.drain())
    feeder = subprocess.Popen([sys.executable, "-m", "bench.feeder", "esl-out", str(port),
                               str(ESL_CALLS), str(recordings), str(spool_dir)],
                              stdout=subprocess.PIPE, text=True)
    assert feeder.stdout is not None
    feeder.stdout.readline()  # its frames are built: the calls connect now
    started = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.shield(drain), 300)
    except TimeoutError:
        raise RuntimeError(f"esl-c: {callbacks.count} of {callbacks.expected} recordings "
                           f"queued, {len(calls)} calls open") from None
    seconds = time.perf_counter() - started
    feeder.kill()
    feeder.wait()
    await bridge.stop(listener.stop, within=10)
    print(f"PEAK_PENDING {bridge.peak_pending}")  # the backpressure bound held (or not)
    return seconds


def main(argv: list[str]) -> None:
    variant, events = argv[0], int(argv[1])
    feeder = None
    try:
        if variant.startswith("ami"):
            feeder, port = _feeder("ami", str(events))
            run = {"ami-a": _ami_a, "ami-b": _ami_b, "ami-c": _ami_c}[variant]
            seconds = asyncio.run(run(int(port), events))
            total = max(1, events // streams.AMI_EVENTS_PER_CALL) * streams.AMI_EVENTS_PER_CALL
        elif variant in ("esl-a", "esl-b"):
            feeder, port = _feeder("esl-in", str(events))
            seconds = (_esl_a(int(port), events) if variant == "esl-a"
                       else asyncio.run(_esl_b(int(port), events)))
            total = _esl_total(events, 20)
        elif variant == "esl-c":
            seconds = asyncio.run(_esl_c(events))
            total = _esl_total(events, ESL_CALLS)
        else:
            raise SystemExit(f"unknown variant {variant!r}")
    finally:
        if feeder is not None and feeder.poll() is None:
            feeder.kill()
            feeder.wait()
    print(f"RESULT {total} {seconds}")


def _esl_total(events: int, streams_calls: int) -> int:
    recordings = max(1, events // streams.ESL_EVENTS_PER_RECORDING // streams_calls)
    return recordings * streams_calls * streams.ESL_EVENTS_PER_RECORDING


if __name__ == "__main__":
    main(sys.argv[1:])
