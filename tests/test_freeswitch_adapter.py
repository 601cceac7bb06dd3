"""The whole adapter on the FreeSWITCH driver: a voicemail `<Record>` through the ESL test
server (tests/fs_esl_server.py), with the same webhooks and callbacks as on Asterisk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath

import pytest
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN
from fs_esl_server import FakeFreeSwitch, Key, RecordPlan
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import TwimlApp

from adapter.config import load_config
from adapter.recordings import media
from adapter.service import Adapter

PBX_SPOOL = PurePosixPath("/var/spool/freeswitch/twiml")



@pytest.fixture
async def rig(tmp_path: Path, app: TwimlApp) -> AsyncIterator[tuple[Adapter, FakeFreeSwitch]]:
    spool = tmp_path / "spool"
    spool.mkdir()
    fake = FakeFreeSwitch(spool_pbx=PBX_SPOOL, spool_local=spool,
                          sound_prefix=tmp_path / "sounds")
    await fake.start()
    config = load_config(None, environ={
        "TWIML_ADAPTER_ACCOUNT_SID": ACCOUNT_SID,
        "TWIML_ADAPTER_ACCOUNT_AUTH_TOKEN": AUTH_TOKEN,
        "TWIML_ADAPTER_HTTP_LISTEN": "127.0.0.1:0",
        "TWIML_ADAPTER_HTTP_PUBLIC_BASE_URL": "http://adapter.example.com",
        "TWIML_ADAPTER_STORAGE_DATA_DIR": str(tmp_path / "data"),
        "TWIML_ADAPTER_PBX_TYPE": "freeswitch",
        "TWIML_ADAPTER_FREESWITCH_LISTEN": "127.0.0.1:0",
        "TWIML_ADAPTER_FREESWITCH_ESL_HOST": fake.address[0],
        "TWIML_ADAPTER_FREESWITCH_ESL_PORT": str(fake.address[1]),
        "TWIML_ADAPTER_FREESWITCH_ESL_PASSWORD": "ClueCon",
        "TWIML_ADAPTER_FREESWITCH_SPOOL_DIR": str(PBX_SPOOL),
        "TWIML_ADAPTER_FREESWITCH_SPOOL_DIR_LOCAL": str(spool),
        "TWIML_ADAPTER_NUMBERS": f'[{{"number": "*", "voice_url": "{app.url("/voice")}"}}]',
    })
    adapter = Adapter(config)
    await adapter.start(serve_http=False)
    try:
        yield adapter, fake
    finally:
        await adapter.stop()
        await fake.stop()


async def test_voicemail_on_freeswitch(
    rig: tuple[Adapter, FakeFreeSwitch], app: TwimlApp
) -> None:
    adapter, fake = rig
    response = VoiceResponse()
    response.say("Leave a message.")
    response.record(action="/done", finish_on_key="#", recording_status_callback="/status",
                    recording_status_callback_event="in-progress completed")
    app.answer("/voice", response)
    app.answer("/done", VoiceResponse())
    address = adapter.driver.outbound_address  # type: ignore[union-attr]
    call = fake.place_call(address, to="+15557650000", from_="+15551230001",
                           caller_name="FS Caller")
    call.plan_record(RecordPlan(talk_s=3, keys=(Key(3.5, "#"),)))

    voice = await app.next_request("/voice")
    assert voice.params["To"] == "+15557650000" and voice.params["From"] == "+15551230001"
    assert voice.params["CallerName"] == "FS Caller"
    done = await app.next_request("/done")
    first, second = await app.next_request("/status"), await app.next_request("/status")
    assert await asyncio.wait_for(adapter.finished.get(), 30) == voice.params["CallSid"]
    assert all(r.signature_valid for r in (voice, done, first, second))
    assert done.params["Digits"] == "#"
    assert done.params["RecordingDuration"] == "3"
    assert [first.params["RecordingStatus"], second.params["RecordingStatus"]] == [
        "in-progress", "completed"]
    assert second.params["RecordingSource"] == "RecordVerb"
    wav = adapter.config.data_dir / "recordings" / f"{done.params['RecordingSid']}.wav"
    info = media.wav_info(wav)
    assert info.channels == 1 and abs(info.duration - 3.0) < 0.1  # trimmed: the talk only
    row = await adapter.ctx.store.get_call(voice.params["CallSid"])  # type: ignore[union-attr]
    assert row is not None and row.pbx == "freeswitch" and row.status == "completed"
