"""The Calls REST API's outbound calls (``POST /Calls.json``), driven by the official `twilio`
client against a running adapter on a real Asterisk, whose test callees (tests/labs/asterisk_lab.py)
answer with 1000 Hz, are busy or ring.

What behaves the same on both PBXs (recordings on a live call: create, pause, resume, stop,
Twilio.CURRENT, list, fetch, delete; the call resource: fetch, redirect, end; the errors) is in
tests/interpreter/test_rest_api.py, parametrised by PBX."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN
from audio_checks import channel_samples, tone_power
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import TwimlApp

from adapter.service import Adapter

pytestmark = pytest.mark.asterisk
T = TypeVar("T")


def sdk(adapter: Adapter, token: str = AUTH_TOKEN) -> Client:
    client = Client(ACCOUNT_SID, token)
    client.api.base_url = adapter.config.http.public_base_url
    return client


async def off_loop(call: Callable[[], T]) -> T:
    """The SDK is synchronous; the adapter runs on this loop: call it from a thread."""
    return await asyncio.to_thread(call)


async def completed_callback(app: TwimlApp) -> dict[str, str]:
    while True:
        request = await app.next_request("/rec", within=30)
        assert request.signature_valid
        if request.params["RecordingStatus"] in ("completed", "absent"):
            return request.params


async def test_outbound_call_with_record(adapter: Adapter, app: TwimlApp) -> None:
    from asterisk_lab import CALLEE_TONE1000

    greeting = VoiceResponse()
    greeting.say("Hello, this is a call from the adapter.")
    greeting.pause(length=10)
    app.answer("/outbound", greeting)
    client = sdk(adapter)
    call = await off_loop(lambda: client.calls.create(
        to=CALLEE_TONE1000, from_="+15550001234", url=app.url("/outbound"),
        status_callback=app.url("/status"),
        status_callback_event=["initiated", "answered", "completed"],
        record=True, recording_channels="dual",
        recording_status_callback=app.url("/rec")))
    assert call.status == "queued" and call.direction == "outbound-api"
    assert call.sid.startswith("CA")

    fetched = await app.next_request("/outbound")
    assert fetched.signature_valid
    assert fetched.params["CallSid"] == call.sid
    assert fetched.params["Direction"] == "outbound-api"
    assert fetched.params["CallStatus"] == "in-progress"
    assert fetched.params["To"] == CALLEE_TONE1000 and fetched.params["From"] == "+15550001234"
    # The callee hangs up after 4 s: the call ends, the recording completes.
    assert await asyncio.wait_for(adapter.finished.get(), 30) == call.sid
    done = await completed_callback(app)
    assert done["RecordingSource"] == "OutboundAPI"
    assert done["RecordingChannels"] == "2" and done["CallSid"] == call.sid
    wav = adapter.config.data_dir / "recordings" / f"{done['RecordingSid']}.wav"
    callee = channel_samples(wav, 0, start=1.0, length=2.0)
    assert tone_power(callee, 1000) > 20 * tone_power(callee, 440)  # channel 1: the callee
    await adapter.ctx.outbox.wait_idle(20)  # type: ignore[union-attr]
    statuses = [r.params["CallStatus"] for r in app.received("/status")]
    assert statuses == ["queued", "in-progress", "completed"]
    assert all(r.signature_valid for r in app.received("/status"))
    final = app.received("/status")[-1].params
    assert 3 <= int(final["CallDuration"]) <= 6
    assert (await off_loop(lambda: client.calls(call.sid).fetch())).status == "completed"


async def test_outbound_call_busy(adapter: Adapter, app: TwimlApp) -> None:
    from asterisk_lab import CALLEE_BUSY

    client = sdk(adapter)
    call = await off_loop(lambda: client.calls.create(
        to=CALLEE_BUSY, from_="+15550001234", twiml="<Response><Say>hi</Say></Response>",
        status_callback=app.url("/status")))
    assert await asyncio.wait_for(adapter.finished.get(), 30) == call.sid
    await adapter.ctx.outbox.wait_idle(20)  # type: ignore[union-attr]
    (final,) = app.received("/status")
    assert final.params["CallStatus"] == "busy"
    assert (await off_loop(lambda: client.calls(call.sid).fetch())).status == "busy"
    with pytest.raises(TwilioRestException) as info:
        await off_loop(lambda: client.calls.create(to="not a number", from_="+1555",
                                                   url=app.url("/x")))
    assert info.value.code == 21211


async def test_outbound_call_rings_and_is_canceled(adapter: Adapter, app: TwimlApp,
                                                   ami: Any) -> None:
    """A REST call to a callee that rings: the `ringing` status callback (the channel's
    Newstate), then ``Status=canceled`` ends the attempt; the call is `canceled`."""
    from asterisk_lab import CALLEE_NO_ANSWER

    events = ["initiated", "ringing", "answered", "completed"]
    client = sdk(adapter)
    call = await off_loop(lambda: client.calls.create(
        to=CALLEE_NO_ANSWER, from_="+15550001234", twiml="<Response><Say>hi</Say></Response>",
        status_callback=app.url("/status"), status_callback_event=events, timeout=60))
    first = await app.next_request("/status", within=10)
    ringing = await app.next_request("/status", within=10)
    assert [first.params["CallStatus"], ringing.params["CallStatus"]] == ["queued", "ringing"]
    assert ringing.signature_valid and ringing.params["SequenceNumber"] == "1"
    assert (await off_loop(lambda: client.calls(call.sid).fetch())).status == "ringing"

    canceled = await off_loop(lambda: client.calls(call.sid).update(status="canceled"))
    assert canceled.status == "canceled"
    assert await asyncio.wait_for(adapter.finished.get(), 20) == call.sid
    final = await app.next_request("/status", within=10)
    assert final.params["CallStatus"] == "canceled" and final.params["CallDuration"] == "0"
    assert (await off_loop(lambda: client.calls(call.sid).fetch())).status == "canceled"
    # Cancelling a call that is over: Twilio's 21220.
    with pytest.raises(TwilioRestException) as info:
        await off_loop(lambda: client.calls(call.sid).update(status="canceled"))
    assert info.value.status == 400 and info.value.code == 21220
