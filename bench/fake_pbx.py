"""Simulated calls at the protocol edge, for the benchmarks of many calls (bench/
callback_latency.py, bench/memory_per_call.py): the ESL test server of tests/support/esl_server
(a FreeSWITCH 1.10.12 stand-in speaking the lab transcripts' bytes over real sockets, writing
real WAV files), in real time (scale 1.0), and the adapter configuration that reaches it; a
local receiver that notes when each recording callback arrives."""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath
from typing import Any

from aiohttp import web

import bench.labs  # noqa: F401  (puts tests/labs and tests/support on sys.path)

PBX_SPOOL = PurePosixPath("/var/spool/freeswitch/twiml")  # FreeSWITCH's view of the spool
TO, FROM = "+15557650000", "+15551230014"
_SID = re.compile(r"RE[0-9a-f]{32}")


def recording_sid(path: str) -> str | None:
    """The RecordingSid in a spool path (layout names every file after it)."""
    found = _SID.search(path)
    return found.group(0) if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def fake_freeswitch(work: Path) -> AsyncIterator[Any]:
    """The ESL test server in real time, its spool under `work`."""
    from esl_server.server import FakeFreeSwitch

    (work / "spool").mkdir(parents=True, exist_ok=True)
    fs = FakeFreeSwitch(spool_pbx=PBX_SPOOL, spool_local=work / "spool",
                        sound_prefix=work / "sounds", scale=1.0)
    await fs.start()
    try:
        yield fs
    finally:
        await fs.stop()


def adapter_environ(fs: Any, data_dir: Path, voice_url: str) -> dict[str, str]:
    """The adapter's configuration (environment only) for the ESL test server `fs`; it listens
    for the calls on a free port (`outbound_address`)."""
    from freeswitch_lab import FreeSwitchStack

    stack = FreeSwitchStack(esl_host=fs.address[0], esl_port=fs.address[1],
                            esl_password=fs.password, spool_local=fs.spool_local,
                            socket_address=("127.0.0.1", _free_port()), spool_pbx=PBX_SPOOL)
    return stack.adapter_environ(data_dir, voice_url)


def outbound_address(environ: dict[str, str]) -> tuple[str, int]:
    host, port = environ["TWIML_ADAPTER_FREESWITCH_LISTEN"].rsplit(":", 1)
    return host, int(port)


class CallbackReceiver:
    """A local HTTP server that answers 204 to every callback and notes when each recording's
    arrived (monotonic clock), by RecordingSid, with its RecordingStatus."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.statuses: dict[str, str] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        now = time.monotonic()
        sid = str(form.get("RecordingSid", ""))
        self.arrived.setdefault(sid, now)
        self.statuses[sid] = str(form.get("RecordingStatus", ""))
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/callback"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
