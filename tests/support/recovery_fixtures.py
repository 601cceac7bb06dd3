"""The recovery tests' database and spool (tests/recovery/): a configuration on `db_url`
(fixture `config`), its `store` and an `outbox` that is never started (the test reads what
recovery queued), call and recording rows as a PBX call leaves them, and WAV files in the
spool (`write_wav`, `spool_dir`)."""

from __future__ import annotations

import json
import math
import struct
import wave
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from adapter.callbacks.outbox import Outbox
from adapter.callbacks.webhook_client import WebhookClient
from adapter.config import Config, load_config
from adapter.db.schema import outbox_table
from adapter.db.store import CallRow, RecordingRow, Store
from adapter.sids import CALL, RECORDING, new_sid

ACCOUNT = "AC" + "e" * 32
T0 = datetime.now(UTC) - timedelta(minutes=5)
CALLBACK = "https://app.example/rec"


def write_wav(path: Path, seconds: float, *, tone: bool = True, final: bool = True) -> Path:
    """8 kHz mono 16-bit: a 440 Hz tone (or silence); `final=False` leaves the size fields 0,
    as a writer that never closed the file does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = int(seconds * 8000)
    samples = [int(8000 * math.sin(2 * math.pi * 440 * i / 8000)) if tone else 0
               for i in range(frames)]
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(struct.pack(f"<{frames}h", *samples))
    if not final:
        with path.open("r+b") as f:
            f.seek(4)
            f.write(b"\0\0\0\0")
            f.seek(40)
            f.write(b"\0\0\0\0")
    return path


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Config:
    return load_config(None, environ={
        "TWIML_ADAPTER_ACCOUNT_SID": ACCOUNT,
        "TWIML_ADAPTER_ACCOUNT_AUTH_TOKEN": "0123456789abcdef0123",
        "TWIML_ADAPTER_STORAGE_DATA_DIR": str(tmp_path / "data"),
        "TWIML_ADAPTER_STORAGE_DATABASE_URL": db_url,
        "TWIML_ADAPTER_ASTERISK_USERNAME": "adapter",
        "TWIML_ADAPTER_ASTERISK_SECRET": "secret-secret",
        "TWIML_ADAPTER_ASTERISK_SPOOL_DIR": "/var/spool/asterisk/twiml",
        "TWIML_ADAPTER_ASTERISK_SPOOL_DIR_LOCAL": str(tmp_path / "spool"),
        "TWIML_ADAPTER_NUMBERS": '[{"number": "*", "voice_url": "https://app.example/ivr/voice"}]',
    })


@pytest.fixture
async def store(config: Config) -> AsyncIterator[Store]:
    s = await Store.open(config.database_url)
    yield s
    await s.close()


@pytest.fixture
def outbox(store: Store) -> Outbox:
    # Never started: the test reads what recovery queued.
    return Outbox(store, WebhookClient(account_sid=ACCOUNT, auth_token="x"))


def spool_dir(config: Config, call_sid: str) -> Path:
    return config.spool_dir_local / "recordings" / call_sid


async def add_call(store: Store, **changes: object) -> CallRow:
    values: dict[str, object] = dict(
        sid=new_sid(CALL), account_sid=ACCOUNT, from_="+15551230000", to="+15559870000",
        direction="inbound", status="in-progress", caller_name=None, pbx="asterisk",
        pbx_channel=f"uid-{new_sid(CALL)[2:10]}", date_created=T0, date_updated=T0,
        start_time=T0,
    )
    values.update(changes)
    call = CallRow(**values)  # type: ignore[arg-type]
    await store.add_call(call)
    return call


async def add_recording(store: Store, call: CallRow, config: Config, *, source: str,
                        status: str = "in-progress", events: str = "in-progress completed absent",
                        callback: str | None = CALLBACK, channels: int = 1,
                        **changes: object) -> RecordingRow:
    sid = new_sid(RECORDING)
    folder = spool_dir(config, call.sid)
    pbx_file = (str(folder / f"{sid}.wav") if source == "RecordVerb"
                else f"{folder / f'{sid}-inbound.wav'} {folder / f'{sid}-outbound.wav'}")
    values: dict[str, object] = dict(
        sid=sid, account_sid=ACCOUNT, call_sid=call.sid, status=status, source=source,
        channels=channels, track="both" if source != "RecordVerb" else "inbound",
        start_time=T0, date_created=T0, date_updated=T0, pbx_file=pbx_file,
        status_callback=callback, status_callback_events=events,
    )
    values.update(changes)
    row = RecordingRow(**values)  # type: ignore[arg-type]
    await store.add_recording(row)
    return row


async def queued(store: Store) -> list[tuple[str, str, dict[str, str]]]:
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(outbox_table).order_by(outbox_table.c.id))).mappings()
        return [(r["key"], r["url"], dict(json.loads(r["params"]))) for r in rows]
