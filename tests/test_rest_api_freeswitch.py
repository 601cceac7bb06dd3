"""Outbound REST calls (`POST Calls.json`) on the FreeSWITCH driver, driven by the official
`twilio` client against a running adapter whose PBX is the ESL test server
(tests/fs_esl_server.py), whose dialplan is the shipped dialplan/freeswitch/twiml.xml. The rest
of the REST API runs on both PBXs in tests/test_shared_rest_api.py."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN, freeswitch_adapter
from audio_checks import channel_samples, tone_power
from fs_esl_server import FakeFreeSwitch
from test_freeswitch_originate import install_dialplan
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import TwimlApp

from adapter.service import Adapter

T = TypeVar("T")


@pytest.fixture
async def rig(tmp_path: Path, app: TwimlApp) -> AsyncIterator[tuple[Adapter, FakeFreeSwitch]]:
    async with freeswitch_adapter(tmp_path, app.url("/voice"), serve_http=True) as (adapter,
                                                                                     fake):
        fake.set_scale(0.25)  # a call second is a quarter of a real second
        assert adapter.driver is not None and adapter.driver.outbound_address is not None
        install_dialplan(fake, adapter.driver.outbound_address)  # type: ignore[union-attr]
        yield adapter, fake


async def off_loop(call: Callable[[], T]) -> T:
    return await asyncio.to_thread(call)


def sdk(adapter: Adapter) -> Client:
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = adapter.config.http.public_base_url
    return client


async def test_outbound_call_with_record(rig: tuple[Adapter, FakeFreeSwitch],
                                         app: TwimlApp) -> None:
    adapter, fake = rig
    fake.set_scale(1.0)  # real time: the call durations below are the adapter's own clock
    greeting = VoiceResponse()
    greeting.say("Hello, this is a call from the adapter.")
    greeting.pause(length=10)
    app.answer("/outbound", greeting)
    client = sdk(adapter)
    call = await off_loop(lambda: client.calls.create(
        to="2000", from_="+15550001234", url=app.url("/outbound"),
        status_callback=app.url("/status"),
        status_callback_event=["initiated", "answered", "completed"],
        record=True, recording_channels="dual", recording_status_callback=app.url("/rec")))
    assert call.status == "queued" and call.direction == "outbound-api"
    assert call.sid.startswith("CA")

    fetched = await app.next_request("/outbound")
    assert fetched.signature_valid
    assert fetched.params["CallSid"] == call.sid
    assert fetched.params["Direction"] == "outbound-api"
    assert fetched.params["CallStatus"] == "in-progress"
    assert fetched.params["To"] == "2000" and fetched.params["From"] == "+15550001234"
    # The callee (2000) answers after 1 s and hangs up 4 s later: the call ends, the recording
    # completes.
    assert await asyncio.wait_for(adapter.finished.get(), 30) == call.sid
    done = await app.next_request("/rec", within=30)
    assert done.signature_valid
    assert done.params["RecordingStatus"] == "completed"
    assert done.params["RecordingSource"] == "OutboundAPI"
    assert done.params["RecordingChannels"] == "2" and done.params["CallSid"] == call.sid
    wav = adapter.config.data_dir / "recordings" / f"{done.params['RecordingSid']}.wav"
    callee = channel_samples(wav, 0, start=1.0, length=2.0)
    ours = channel_samples(wav, 1, start=1.0, length=2.0)
    # channel 1 (what the channel reads): the callee's 1000 Hz; channel 2 what we played
    assert tone_power(callee, 1000) > 20 * tone_power(callee, 440)
    assert tone_power(callee, 1000) > 20 * tone_power(ours, 1000)
    await adapter.ctx.outbox.wait_idle(20)  # type: ignore[union-attr]
    statuses = [r.params["CallStatus"] for r in app.received("/status")]
    assert statuses == ["queued", "in-progress", "completed"]
    assert all(r.signature_valid for r in app.received("/status"))
    final = app.received("/status")[-1].params
    assert 3 <= int(final["CallDuration"]) <= 6
    assert (await off_loop(lambda: client.calls(call.sid).fetch())).status == "completed"
    (attempt,) = fake.originates
    row = await adapter.ctx.store.get_call(call.sid)  # type: ignore[union-attr]
    assert row is not None and row.pbx_channel == attempt.uuid  # known before the answer


@pytest.mark.parametrize(("to", "status"), [
    ("2001", "busy"),        # USER_BUSY
    ("2005", "busy"),        # CALL_REJECTED
    ("2002", "no-answer"),   # rings out: originate_timeout
    ("2003", "failed"),      # UNALLOCATED_NUMBER
])
async def test_outbound_call_not_answered(rig: tuple[Adapter, FakeFreeSwitch], app: TwimlApp,
                                          to: str, status: str) -> None:
    adapter, fake = rig
    client = sdk(adapter)
    call = await off_loop(lambda: client.calls.create(
        to=to, from_="+15550001234", twiml="<Response><Say>hi</Say></Response>", timeout=5,
        status_callback=app.url("/status")))
    assert await asyncio.wait_for(adapter.finished.get(), 30) == call.sid
    await adapter.ctx.outbox.wait_idle(20)  # type: ignore[union-attr]
    (final,) = app.received("/status")
    assert final.signature_valid
    assert final.params["CallStatus"] == status and final.params["CallSid"] == call.sid
    assert (await off_loop(lambda: client.calls(call.sid).fetch())).status == status
    assert not fake.calls  # no channel ever reached the adapter


async def test_outbound_call_command_and_refused_values(rig: tuple[Adapter, FakeFreeSwitch],
                                                        app: TwimlApp) -> None:
    adapter, fake = rig
    client = sdk(adapter)
    call = await off_loop(lambda: client.calls.create(
        to="2004", from_="+15550001234", twiml="<Response><Hangup/></Response>", timeout=15))
    assert await asyncio.wait_for(adapter.finished.get(), 30) == call.sid
    (bgapi,) = [c for c in fake.inbound_commands if c.startswith("bgapi ")]
    (attempt,) = fake.originates
    assert bgapi == (
        f"bgapi originate {{origination_uuid={attempt.uuid},originate_timeout=15,"
        "ignore_early_media=true,origination_caller_id_number=+15550001234,"
        f"twiml_call_sid={call.sid}}}sofia/gateway/trunk/2004 {call.sid} XML twiml-outbound\n"
        f"Job-UUID: {attempt.job}")
    assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", attempt.uuid)
    assert attempt.call is not None and attempt.call.hangup_by == "adapter"
    for from_, to, code in [("+1555,origination_uuid=x", "2000", 21212),
                            ("+1555}sofia/evil/1", "2000", 21212),
                            ("+1555 2000 XML default", "2000", 21212),
                            ("+15550001234", "2000,sofia/gateway/trunk/2001", 21211),
                            ("+15550001234", "2000}x", 21211)]:
        with pytest.raises(TwilioRestException) as info:
            await off_loop(functools.partial(client.calls.create, to=to, from_=from_,
                                             twiml="<Response/>"))
        assert info.value.code == code, (from_, to)
    assert len([c for c in fake.inbound_commands if c.startswith("bgapi ")]) == 1


async def test_trunk_call_with_the_marker_is_not_adopted(rig: tuple[Adapter, FakeFreeSwitch],
                                                         app: TwimlApp) -> None:
    """A trunk call that carries ``twiml_call_sid`` of a ringing outbound call is an inbound
    call to its number: it does not take the outbound call's place or TwiML."""
    adapter, fake = rig
    app.answer("/outbound", "<Response><Say>for the callee only</Say></Response>")
    app.answer("/voice", "<Response><Hangup/></Response>")
    client = sdk(adapter)
    call = await off_loop(lambda: client.calls.create(
        to="2002", from_="+15550001234", url=app.url("/outbound"), timeout=10))
    assert adapter.driver is not None and adapter.driver.outbound_address is not None
    forged = fake.place_call(adapter.driver.outbound_address,  # type: ignore[union-attr]
                             to="+15557650000", from_="+15551230009")
    forged.channel.set_var("twiml_call_sid", call.sid)
    voice = await app.next_request("/voice")
    assert voice.params["Direction"] == "inbound" and voice.params["CallSid"] != call.sid
    inbound_sid = voice.params["CallSid"]
    assert await asyncio.wait_for(adapter.finished.get(), 30) == inbound_sid
    assert call.sid in adapter.pending_outbound  # still waiting for its own answer
    # ... which never comes: no-answer, and its TwiML was never fetched
    assert await asyncio.wait_for(adapter.finished.get(), 30) == call.sid
    assert (await off_loop(lambda: client.calls(call.sid).fetch())).status == "no-answer"
    assert not app.received("/outbound")


# --- ringing and cancelling (CHANNEL_PROGRESS, uuid_kill … ORIGINATOR_CANCEL) ------------------

EVENTS = ["initiated", "ringing", "answered", "completed"]


async def ringing_call(adapter: Adapter, app: TwimlApp) -> str:
    """A REST call to 2002 (rings, never answers), once its `ringing` callback arrived."""
    client = sdk(adapter)
    call = await off_loop(lambda: client.calls.create(
        to="2002", from_="+15550001234", twiml="<Response><Say>hi</Say></Response>",
        status_callback=app.url("/status"), status_callback_event=EVENTS, timeout=60))
    first = await app.next_request("/status", within=10)
    ringing = await app.next_request("/status", within=10)
    assert [first.params["CallStatus"], ringing.params["CallStatus"]] == ["queued", "ringing"]
    assert ringing.signature_valid and ringing.params["CallSid"] == call.sid
    assert ringing.params["SequenceNumber"] == "1"
    assert (await off_loop(lambda: client.calls(call.sid).fetch())).status == "ringing"
    return call.sid


async def test_outbound_call_rings_and_is_canceled(rig: tuple[Adapter, FakeFreeSwitch],
                                                   app: TwimlApp) -> None:
    """The `ringing` status callback (the channel's CHANNEL_PROGRESS), then
    ``Status=canceled`` kills the ringing channel; the call is `canceled`."""
    adapter, fake = rig
    client = sdk(adapter)
    call_sid = await ringing_call(adapter, app)
    canceled = await off_loop(lambda: client.calls(call_sid).update(status="canceled"))
    assert canceled.status == "canceled"
    assert await asyncio.wait_for(adapter.finished.get(), 20) == call_sid
    final = await app.next_request("/status", within=10)
    assert final.params["CallStatus"] == "canceled" and final.params["CallDuration"] == "0"
    assert final.signature_valid
    assert (await off_loop(lambda: client.calls(call_sid).fetch())).status == "canceled"
    (attempt,) = fake.originates
    assert attempt.cause == "ORIGINATOR_CANCEL"
    assert f"api uuid_kill {attempt.uuid} ORIGINATOR_CANCEL" in fake.inbound_commands
    assert not fake.calls  # no channel ever reached the adapter
    # over: Twilio's 21220
    with pytest.raises(TwilioRestException) as info:
        await off_loop(lambda: client.calls(call_sid).update(status="canceled"))
    assert info.value.status == 400 and info.value.code == 21220


async def test_completed_on_a_ringing_call_cancels_it(rig: tuple[Adapter, FakeFreeSwitch],
                                                      app: TwimlApp) -> None:
    adapter, fake = rig
    client = sdk(adapter)
    call_sid = await ringing_call(adapter, app)
    ended = await off_loop(lambda: client.calls(call_sid).update(status="completed"))
    assert ended.status == "canceled"
    assert await asyncio.wait_for(adapter.finished.get(), 20) == call_sid
    final = await app.next_request("/status", within=10)
    assert final.params["CallStatus"] == "canceled" and final.params["CallDuration"] == "0"
    assert (await off_loop(lambda: client.calls(call_sid).fetch())).status == "canceled"
    assert fake.originates[0].cause == "ORIGINATOR_CANCEL"


async def test_canceled_leaves_an_answered_outbound_call_alone(
        rig: tuple[Adapter, FakeFreeSwitch], app: TwimlApp) -> None:
    """Twilio: ``Status=canceled`` "will not affect calls already in progress": nothing is
    killed and the call goes on; ``completed`` then ends it."""
    adapter, fake = rig
    app.answer("/outbound", "<Response><Pause length='60'/></Response>")
    client = sdk(adapter)
    call = await off_loop(lambda: client.calls.create(
        to="2004", from_="+15550001234", url=app.url("/outbound"),
        status_callback=app.url("/status"), status_callback_event=EVENTS))
    fetched = await app.next_request("/outbound")
    assert fetched.params["CallStatus"] == "in-progress"
    unchanged = await off_loop(lambda: client.calls(call.sid).update(status="canceled"))
    assert unchanged.status == "in-progress"
    assert not [c for c in fake.inbound_commands if "ORIGINATOR_CANCEL" in c]
    assert call.sid in adapter.sessions
    assert not adapter.sessions[call.sid].call.hung_up.is_set()
    (attempt,) = fake.originates
    assert attempt.call is not None and not attempt.call.hung_up
    ended = await off_loop(lambda: client.calls(call.sid).update(status="completed"))
    assert ended.status == "completed"
    assert await asyncio.wait_for(adapter.finished.get(), 20) == call.sid
    await adapter.ctx.outbox.wait_idle(20)  # type: ignore[union-attr]
    statuses = [r.params["CallStatus"] for r in app.received("/status")]
    assert statuses == ["queued", "ringing", "in-progress", "completed"]
