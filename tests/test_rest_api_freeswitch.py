"""The Recordings and Calls REST API on the FreeSWITCH driver, driven by the official `twilio`
client against a running adapter whose PBX is the ESL test server (tests/fs_esl_server.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN, freeswitch_adapter
from fs_esl_server import FakeFreeSwitch
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import TwimlApp

from adapter.recordings import media
from adapter.service import Adapter

T = TypeVar("T")


@pytest.fixture
async def rig(tmp_path: Path, app: TwimlApp) -> AsyncIterator[tuple[Adapter, FakeFreeSwitch]]:
    async with freeswitch_adapter(tmp_path, app.url("/voice"), serve_http=True) as (adapter,
                                                                                     fake):
        fake.set_scale(0.25)  # a call second is a quarter of a real second
        yield adapter, fake


async def off_loop(call: Callable[[], T]) -> T:
    return await asyncio.to_thread(call)


def sdk(adapter: Adapter) -> Client:
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = adapter.config.http.public_base_url
    return client


async def live_call(adapter: Adapter, fake: FakeFreeSwitch, app: TwimlApp) -> str:
    response = VoiceResponse()
    response.say("Hello.")
    response.redirect("/ready")
    app.answer("/voice", response)
    waiting = VoiceResponse()
    waiting.pause(length=600)
    app.answer("/ready", waiting)
    fake.place_call(adapter.driver.outbound_address,  # type: ignore[union-attr]
                    to="+15557650000", from_="+15551230008", caller_name="REST FS")
    ready = await app.next_request("/ready")
    return ready.params["CallSid"]


def commands(fake: FakeFreeSwitch, word: str) -> list[str]:
    return [c for c in fake.inbound_commands if "uuid_record" in c and f" {word} " in c]


@pytest.mark.parametrize("behavior", ["silence", "skip"])
async def test_create_pause_resume_stop_on_freeswitch(
    rig: tuple[Adapter, FakeFreeSwitch], app: TwimlApp, behavior: str
) -> None:
    adapter, fake = rig
    call_sid = await live_call(adapter, fake, app)
    recordings = sdk(adapter).calls(call_sid).recordings
    created = await off_loop(lambda: recordings.create(recording_status_callback=app.url("/rec")))
    assert created.status == "in-progress" and created.source == "StartCallRecordingAPI"
    await asyncio.sleep(0.5)  # two call seconds of audio (not a synchronisation)
    paused = await off_loop(lambda: recordings("Twilio.CURRENT").update(
        status="paused", pause_behavior=behavior))
    assert paused.status == "paused"
    if behavior == "silence":
        assert len(commands(fake, "mask")) == 1  # uuid_record mask: the file keeps its time
    else:
        assert len(commands(fake, "stop")) == 1  # the segment ends; resuming starts another
    await asyncio.sleep(0.5)
    await off_loop(lambda: recordings(created.sid).update(status="in-progress"))
    if behavior == "silence":
        assert len(commands(fake, "unmask")) == 1
    else:
        assert len(commands(fake, "start")) == 2
    await asyncio.sleep(0.5)
    stopped = await off_loop(lambda: recordings(created.sid).update(status="stopped"))
    assert stopped.status == "stopped"
    done = await app.next_request("/rec", within=30)
    assert done.signature_valid
    assert done.params["RecordingStatus"] == "completed"
    assert done.params["RecordingSource"] == "StartCallRecordingAPI"
    wav = adapter.config.data_dir / "recordings" / f"{created.sid}.wav"
    duration = media.wav_info(wav).duration
    # About 6 call seconds with the silent pause kept, about 4 with it skipped.
    assert (5.0 <= duration <= 7.5) if behavior == "silence" else (3.0 <= duration <= 5.5), duration

    await off_loop(lambda: sdk(adapter).calls(call_sid).update(status="completed"))
    assert await asyncio.wait_for(adapter.finished.get(), 20) == call_sid
    with pytest.raises(TwilioRestException) as info:
        await off_loop(lambda: recordings.create())
    assert info.value.code == 21220
