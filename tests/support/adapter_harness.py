"""Run the real adapter in-process against the test Asterisk and a test TwiML app."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from asterisk_lab import CALLEES_CONTEXT, AsteriskPbx
from twiml_app import TwimlApp

from adapter.config import Config, load_config
from adapter.recordings import layout
from adapter.service import Adapter

__all__ = [
    "ACCOUNT_SID",
    "AUTH_TOKEN",
    "FS_SPOOL",
    "adapter",
    "adapter_config",
    "adapter_environ",
    "app",
    "call_reported",
    "http_config",
    "media_file",
    "running_adapter",
]

FS_SPOOL = PurePosixPath("/var/spool/freeswitch/twiml")  # FreeSWITCH's view of the spool

ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "f0e1d2c3b4a5968778695a4b3c2d1e0f"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_config(data_dir: Path, port: int, public_media: bool) -> Config:
    """A configuration for the HTTP API alone (no PBX reached): listening on `port`, media
    public or behind the account's auth."""
    return load_config(None, environ={
        "TWIML_ADAPTER_ACCOUNT_SID": ACCOUNT_SID,
        "TWIML_ADAPTER_ACCOUNT_AUTH_TOKEN": AUTH_TOKEN,
        "TWIML_ADAPTER_HTTP_LISTEN": f"127.0.0.1:{port}",
        "TWIML_ADAPTER_HTTP_PUBLIC_MEDIA": str(public_media).lower(),
        "TWIML_ADAPTER_STORAGE_DATA_DIR": str(data_dir),
        "TWIML_ADAPTER_ASTERISK_USERNAME": "u",
        "TWIML_ADAPTER_ASTERISK_SECRET": "s",
        "TWIML_ADAPTER_NUMBERS": '[{"number": "*", "voice_url": "http://127.0.0.1:9/v"}]',
    })


def adapter_config(pbx: AsteriskPbx, data_dir: Path, voice_url: str, **extra: str) -> Config:
    """A configuration built from environment variables only (the container way)."""
    return load_config(None, environ=adapter_environ(pbx, data_dir, voice_url, **extra))


def adapter_environ(pbx: AsteriskPbx, data_dir: Path, voice_url: str,
                    **extra: str) -> dict[str, str]:
    """The adapter's environment variables for this Asterisk (also for an adapter in its own
    process: bench/real_pbx_load.py)."""
    port = _free_port()
    return {
        "TWIML_ADAPTER_ACCOUNT_SID": ACCOUNT_SID,
        "TWIML_ADAPTER_ACCOUNT_AUTH_TOKEN": AUTH_TOKEN,
        "TWIML_ADAPTER_HTTP_LISTEN": f"127.0.0.1:{port}",
        "TWIML_ADAPTER_STORAGE_DATA_DIR": str(data_dir),
        "TWIML_ADAPTER_ASTERISK_HOST": pbx.ami_host,
        "TWIML_ADAPTER_ASTERISK_PORT": str(pbx.ami_port),
        "TWIML_ADAPTER_ASTERISK_USERNAME": pbx.ami_username,
        "TWIML_ADAPTER_ASTERISK_SECRET": pbx.ami_secret,
        "TWIML_ADAPTER_ASTERISK_SPOOL_DIR": pbx.spool_dir,
        "TWIML_ADAPTER_ASTERISK_SPOOL_DIR_LOCAL": str(pbx.spool_dir_local),
        "TWIML_ADAPTER_ASTERISK_DIAL_NUMBER": "Local/{number}@" + CALLEES_CONTEXT,
        "TWIML_ADAPTER_ASTERISK_DIAL_SIP": "Local/{uri}",
        "TWIML_ADAPTER_NUMBERS": f'[{{"number": "*", "voice_url": "{voice_url}"}}]',
        **extra,
    }


def media_file(adapter: Adapter, sid: str) -> Path:
    """Where the adapter keeps recording `sid`'s final WAV."""
    return layout.media_file(adapter.config.media_dir, sid)


async def call_reported(adapter: Adapter, within: float = 60) -> str:
    """The CallSid of the next call to end, once every callback it caused has gone out."""
    call_sid = await asyncio.wait_for(adapter.finished.get(), within)
    await adapter.ctx.outbox.wait_idle(20)  # type: ignore[union-attr]
    return call_sid


@contextlib.asynccontextmanager
async def running_adapter(config: Config) -> AsyncIterator[Adapter]:
    adapter = Adapter(config)
    await adapter.start()
    try:
        yield adapter
    finally:
        await adapter.stop()


# --- fixtures (registered for every test module by tests/conftest.py) -----------------------


@pytest.fixture
async def app() -> AsyncIterator[TwimlApp]:
    """The customer's TwiML app: answers paths with TwiML, records the webhooks it gets."""
    server = TwimlApp(AUTH_TOKEN)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def adapter(
    asterisk_lab: AsteriskPbx, app: TwimlApp, tmp_path: Path, ami: Any
) -> AsyncIterator[Adapter]:
    """The adapter on the test Asterisk, every number routed to ``app``'s ``/voice``.

    It depends on ``ami`` so that every channel is hung up after the test."""
    config = adapter_config(asterisk_lab, tmp_path / "data", app.url("/voice"))
    async with running_adapter(config) as running:
        yield running
