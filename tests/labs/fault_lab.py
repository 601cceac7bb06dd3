"""Tools for the fault-injection tests (tests/recovery/test_fault_injection_asterisk.py).

* `AdapterProcess`: ``twiml-adapter serve`` as a real subprocess (tests/support/fault_adapter.py),
  that can be killed with SIGKILL and started again on the same data folder and database.
* `CallbackReceiver`: the customer's status-callback endpoint, which refuses connections,
  stalls, answers 5xx or works, on command; it records every request with its signature
  checked by twilio's `RequestValidator` and its idempotency token.
* `TcpProxy`: a TCP proxy between the adapter and Asterisk's AMI whose connections can be cut.
* `Tally`: the end-of-test check and counts (recordings made, callbacks expected, delivered,
  duplicates).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import aiohttp
from aiohttp import web
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from adapter.db.schema import outbox_table
from adapter.db.store import Store

__all__ = ["AdapterProcess", "CallbackReceiver", "Mode", "Received", "Tally", "TcpProxy"]

TESTS = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the adapter as a subprocess ---------------------------------------------------------------


class AdapterProcess:
    """``twiml-adapter serve`` configured by environment variables; output in `log_path`."""

    def __init__(self, environ: Mapping[str, str], log_path: Path) -> None:
        self.environ = dict(environ)
        self.log_path = log_path
        listen = self.environ["TWIML_ADAPTER_HTTP_LISTEN"]
        self.base_url = f"http://{listen}"
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None
        self.starts = 0

    async def start(self, *, ready_within: float = 30.0) -> None:
        if self._process is not None:
            raise RuntimeError("already running")
        self._log = self.log_path.open("ab")
        self.starts += 1
        self._log.write(f"\n===== start #{self.starts} =====\n".encode())
        self._log.flush()
        env = {**os.environ, **self.environ, "PYTHONUNBUFFERED": "1"}
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, str(TESTS / "support" / "fault_adapter.py"), "serve",
            stdin=asyncio.subprocess.DEVNULL, stdout=self._log, stderr=asyncio.subprocess.STDOUT,
            env=env, cwd=str(TESTS.parent),
        )
        await self._wait_ready(ready_within)

    async def _wait_ready(self, within: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        async with aiohttp.ClientSession() as http:
            while True:
                assert self._process is not None
                if self._process.returncode is not None:
                    raise RuntimeError(f"the adapter exited with {self._process.returncode}:\n"
                                       + self.log_text()[-3000:])
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(self.base_url + "/health") as response:
                        if response.status == 200:
                            return
                if loop.time() > deadline:
                    raise RuntimeError("the adapter did not come up:\n" + self.log_text()[-3000:])
                await asyncio.sleep(0.1)

    async def kill(self) -> None:
        """SIGKILL: no cleanup of any kind, as a crash or the OOM killer."""
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)
        await process.wait()
        self._close_log()

    async def stop(self) -> None:
        """Ctrl-C: the adapter stops cleanly."""
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


# --- the callback receiver -----------------------------------------------------------------


class Mode(enum.Enum):
    UP = "up"  # 204, as a status callback endpoint answers
    REFUSE = "refuse"  # nothing listens on the port: connection refused
    STALL = "stall"  # accepts the request and never answers it
    FAIL = "fail"  # 503


@dataclass(frozen=True)
class Received:
    path: str
    params: dict[str, str]
    signature_valid: bool
    token: str
    answered: int | None  # None: stalled, never answered


class CallbackReceiver:
    """A status-callback endpoint on 127.0.0.1 whose behaviour the test switches."""

    def __init__(self, auth_token: str) -> None:
        self.validator = RequestValidator(auth_token)
        self.mode = Mode.UP
        self.requests: list[Received] = []
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._arrived = asyncio.Condition()
        self._release = asyncio.Event()

    def url(self, path: str) -> str:
        return self.base_url + path

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        form = await request.post() if request.method == "POST" else {}
        params = {k: str(v) for k, v in form.items()} if form else dict(request.query)
        url = self.base_url + request.path_qs
        valid = self.validator.validate(url, params if request.method == "POST" else {},
                                        request.headers.get("X-Twilio-Signature", ""))
        token = request.headers.get("I-Twilio-Idempotency-Token", "")
        mode = self.mode
        status = {Mode.UP: 204, Mode.FAIL: 503}.get(mode)
        await self._record(Received(request.path, params, valid, token, status))
        if mode is Mode.STALL:
            await self._release.wait()
            raise web.HTTPServiceUnavailable()  # by then the client has given up
        return web.Response(status=status or 503)

    async def _record(self, received: Received) -> None:
        async with self._arrived:
            self.requests.append(received)
            self._arrived.notify_all()

    async def wait_for(self, predicate: object, *, within: float) -> None:
        """Until `predicate(self.requests)` is true."""
        assert callable(predicate)
        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(lambda: bool(predicate(self.requests)))

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()

    async def set_mode(self, mode: Mode) -> None:
        if mode is self.mode:
            return
        if self.mode is Mode.REFUSE:
            await self._listen()
        if self.mode is Mode.STALL:
            self._release.set()
        if mode is Mode.REFUSE and self._site is not None:
            await self._site.stop()
            self._site = None
        if mode is Mode.STALL:
            self._release = asyncio.Event()
        self.mode = mode

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()


# --- a cuttable TCP proxy ------------------------------------------------------------------


class TcpProxy:
    """127.0.0.1:`port` → (`host`, `target_port`); `cut()` drops every connection and refuses
    new ones until `restore()`."""

    def __init__(self, host: str, target_port: int) -> None:
        self.host = host
        self.target_port = target_port
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port,
                                                  reuse_address=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            writer.close()
            return
        self.connections += 1
        self._writers |= {writer, up_writer}
        pipes = [asyncio.create_task(self._pipe(reader, up_writer)),
                 asyncio.create_task(self._pipe(up_reader, writer))]
        self._pipes.update(pipes)
        for pipe in pipes:
            pipe.add_done_callback(self._pipes.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            transport = writer.transport
            if transport is not None:
                transport.abort()  # a reset, not a polite close
        self._writers.clear()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def restore(self) -> None:
        if self._server is None:
            await self.start()

    async def stop(self) -> None:
        await self.cut()


# --- the end-of-test check -------------------------------------------------------------------


@dataclass
class Tally:
    """Per recording: the callback statuses expected, in order; checked against what the
    receiver got (2xx-answered requests are deliveries)."""

    expected: dict[str, list[str]] = field(default_factory=dict)
    other: int = 0  # callbacks that are not a recording's (call status callbacks), checked apart

    def expect(self, recording_sid: str, *statuses: str) -> None:
        self.expected[recording_sid] = list(statuses)

    def expect_others(self, count: int) -> None:
        self.other = count

    def check(self, receiver: CallbackReceiver, title: str) -> None:
        delivered = [r for r in receiver.requests if r.answered is not None and r.answered < 300]
        tokens = [r.token for r in delivered]
        duplicates = len(tokens) - len(set(tokens))
        expected_total = sum(len(v) for v in self.expected.values()) + self.other
        print(f"\n[{title}] recordings made: {len(self.expected)}, callbacks expected: "
              f"{expected_total}, delivered: {len(delivered)} (requests received: "
              f"{len(receiver.requests)}), duplicates: {duplicates}")
        for sid, statuses in self.expected.items():
            got = [r for r in delivered if r.params.get("RecordingSid") == sid]
            assert [r.params["RecordingStatus"] for r in got] == statuses, (
                f"{sid}: callbacks {[r.params.get('RecordingStatus') for r in got]}, "
                f"expected {statuses}")
            assert all(r.signature_valid for r in got), f"{sid}: a bad X-Twilio-Signature"
        assert all(r.signature_valid for r in receiver.requests)
        assert len(delivered) == expected_total
        assert duplicates == 0


async def recorded_rest_call(adapter: AdapterProcess, receiver: CallbackReceiver, *, to: str,
                             from_: str, url: str, database_url: str) -> str:
    """A REST call (the official client's ``calls.create`` with ``Record=true``; its call status
    callbacks to `receiver` ``/call``, its recording's to ``/rec-c``) once it is answered and
    recording and its first three callbacks are delivered; returns its CallSid."""
    from adapter_harness import ACCOUNT_SID, AUTH_TOKEN
    from twilio.rest import Client

    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = adapter.base_url
    call = await asyncio.to_thread(lambda: client.calls.create(
        to=to, from_=from_, url=url,
        status_callback=receiver.url("/call"),
        status_callback_event=["initiated", "answered", "completed"],
        record=True, recording_status_callback=receiver.url("/rec-c"),
        recording_status_callback_event=["in-progress", "completed"]))
    await receiver.wait_for(
        lambda rs: {r.path for r in rs} >= {"/rec-c"}
        and [r.params["CallStatus"] for r in rs if r.path == "/call"]
        == ["queued", "in-progress"], within=20)
    await wait_all_delivered(database_url, 3)
    return str(call.sid)


async def wait_all_delivered(database_url: str, count: int, *, within: float = 20.0) -> None:
    """Until the adapter process has delivered `count` callbacks and has none open."""
    store = await Store.open(database_url)
    try:
        async with asyncio.timeout(within):
            while True:  # polling another process's database: no event to await
                async with store.engine.connect() as conn:
                    states = (await conn.execute(select(outbox_table.c.state))).scalars().all()
                if len(states) >= count and set(states) == {"delivered"}:
                    return
                await asyncio.sleep(0.05)
    finally:
        await store.close()
