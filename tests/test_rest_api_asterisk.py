"""The Recordings and Calls REST API, driven by the official `twilio` client against a running
adapter, on a real Asterisk call (the caller plays a continuous 440 Hz tone)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any, TypeVar

import aiohttp
import pytest
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN
from asterisk_lab import CallerScript, originate
from audio_checks import channel_samples, tone_power
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import TwimlApp

from adapter.recordings import media
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


async def live_call(adapter: Adapter, app: TwimlApp, ami: Any, seconds: int = 30) -> str:
    """A call that is answered (the /ready request says so) and then waits `seconds`."""
    response = VoiceResponse()
    response.say("Hello.")
    response.redirect("/ready")
    app.answer("/voice", response)
    waiting = VoiceResponse()
    waiting.pause(length=seconds)
    app.answer("/ready", waiting)
    await originate(ami, CallerScript.TONE440, "+15557650000", from_number="+15551230005",
                    caller_name="REST Caller", variables={"DURATION_S": str(seconds + 10)})
    ready = await app.next_request("/ready")
    assert ready.params["CallStatus"] == "in-progress"
    return ready.params["CallSid"]


async def completed_callback(app: TwimlApp) -> dict[str, str]:
    while True:
        request = await app.next_request("/rec", within=30)
        assert request.signature_valid
        if request.params["RecordingStatus"] in ("completed", "absent"):
            return request.params


def level_dbfs(samples: list[int]) -> float:
    if not samples:
        return -120.0
    rms = math.sqrt(sum(s * s for s in samples) / len(samples))
    return 20 * math.log10(rms / 32768) if rms else -120.0


@pytest.mark.parametrize("behavior", ["silence", "skip"])
async def test_create_pause_resume_stop(
    adapter: Adapter, app: TwimlApp, ami: Any, behavior: str
) -> None:
    call_sid = await live_call(adapter, app, ami)
    client = sdk(adapter)
    recordings = client.calls(call_sid).recordings
    created = await off_loop(lambda: recordings.create(
        recording_status_callback=app.url("/rec"), recording_channels="mono"))
    assert created.status == "in-progress"
    assert created.source == "StartCallRecordingAPI"
    assert created.channels == 1 and created.call_sid == call_sid
    await asyncio.sleep(2)  # two seconds of real audio (not a synchronisation)
    paused = await off_loop(lambda: recordings(created.sid).update(
        status="paused", pause_behavior=behavior))
    assert paused.status == "paused"
    await asyncio.sleep(2)
    resumed = await off_loop(lambda: recordings("Twilio.CURRENT").update(status="in-progress"))
    assert resumed.sid == created.sid and resumed.status == "in-progress"
    await asyncio.sleep(2)
    stopped = await off_loop(lambda: recordings(created.sid).update(status="stopped"))
    assert stopped.status == "stopped"

    done = await completed_callback(app)
    assert done["RecordingSid"] == created.sid
    assert done["RecordingSource"] == "StartCallRecordingAPI"
    wav = adapter.config.data_dir / "recordings" / f"{created.sid}.wav"
    info = media.wav_info(wav)
    if behavior == "silence":
        # The paused seconds are kept, as silence: about 6 s, quiet in the middle.
        assert 5.2 <= info.duration <= 7.0, info.duration
        assert level_dbfs(channel_samples(wav, 0, start=2.5, length=1.0)) < -60
        assert tone_power(channel_samples(wav, 0, start=0.5, length=1.0), 440) > 0
    else:
        # The paused seconds are left out: about 4 s of uninterrupted tone.
        assert 3.2 <= info.duration <= 5.0, info.duration
        for start in (0.5, 1.5, 2.5, 3.0):
            assert level_dbfs(channel_samples(wav, 0, start=start, length=0.4)) > -40

    fetched = await off_loop(lambda: client.recordings(created.sid).fetch())
    assert fetched.status == "completed" and int(fetched.duration) >= 3
    await off_loop(lambda: client.calls(call_sid).update(status="completed"))
    assert await asyncio.wait_for(adapter.finished.get(), 20) == call_sid


async def test_twilio_current_is_ambiguous_with_two(
    adapter: Adapter, app: TwimlApp, ami: Any
) -> None:
    call_sid = await live_call(adapter, app, ami)
    recordings = sdk(adapter).calls(call_sid).recordings
    await off_loop(lambda: recordings.create())
    await off_loop(lambda: recordings.create(recording_track="inbound"))
    with pytest.raises(TwilioRestException) as info:
        await off_loop(lambda: recordings("Twilio.CURRENT").update(status="paused"))
    assert info.value.status == 400 and info.value.code == 16108


async def test_list_fetch_delete_and_call_resource(
    adapter: Adapter, app: TwimlApp, ami: Any
) -> None:
    call_sid = await live_call(adapter, app, ami)
    client = sdk(adapter)
    call = await off_loop(lambda: client.calls(call_sid).fetch())
    assert call.status == "in-progress" and call.direction == "inbound"
    assert call._from == "+15551230005" and call.to == "+15557650000"
    sids = []
    for _ in range(3):
        created = await off_loop(lambda: client.calls(call_sid).recordings.create(
            recording_status_callback=app.url("/rec")))
        sids.append(created.sid)
    await asyncio.sleep(1)
    for sid in sids:
        await off_loop(lambda sid=sid: client.calls(call_sid).recordings(sid).update(
            status="stopped"))
    for _ in sids:
        await completed_callback(app)

    # Paging: page_size=2 makes the SDK follow next_page_uri.
    listed = await off_loop(lambda: client.recordings.list(call_sid=call_sid, page_size=2))
    assert sorted(r.sid for r in listed) == sorted(sids)
    page = await off_loop(lambda: client.recordings.page(page_size=2))
    assert len(list(page)) == 2 and page.next_page_url is not None
    under_call = await off_loop(lambda: client.calls(call_sid).recordings.list())
    assert {r.sid for r in under_call} == set(sids)

    gone = sids[0]
    assert await off_loop(lambda: client.recordings(gone).delete()) is True
    with pytest.raises(TwilioRestException) as info:
        await off_loop(lambda: client.recordings(gone).fetch())
    assert info.value.status == 404 and info.value.code == 20404
    auth = {"Authorization": aiohttp.helpers.BasicAuth(ACCOUNT_SID, AUTH_TOKEN).encode()}
    async with aiohttp.ClientSession() as http:
        url = adapter.config.recording_url(gone)
        async with http.get(url, headers=auth) as response:
            assert response.status == 404
    assert not (adapter.config.data_dir / "recordings" / f"{gone}.wav").exists()

    calls = await off_loop(lambda: client.calls.list())
    assert call_sid in {c.sid for c in calls}
    ended = await off_loop(lambda: client.calls(call_sid).update(status="completed"))
    assert ended.status == "completed"
    await asyncio.wait_for(adapter.finished.get(), 20)
    with pytest.raises(TwilioRestException) as info:
        await off_loop(lambda: client.calls(call_sid).recordings.create())
    assert info.value.code == 21220  # the call has ended
    fetched = await off_loop(lambda: client.calls(call_sid).fetch())
    assert fetched.status == "completed"


async def test_errors(adapter: Adapter, app: TwimlApp, ami: Any) -> None:
    call_sid = await live_call(adapter, app, ami)
    with pytest.raises(TwilioRestException) as info:
        await off_loop(lambda: sdk(adapter, "x" * 32).calls(call_sid).recordings.create())
    assert info.value.status == 401 and info.value.code == 20003
    client = sdk(adapter)
    with pytest.raises(TwilioRestException) as info:
        await off_loop(lambda: client.calls(call_sid).recordings("RE" + "0" * 32).fetch())
    assert info.value.status == 404
    with pytest.raises(TwilioRestException) as info:
        await off_loop(lambda: client.calls("CA" + "0" * 32).recordings.create())
    assert info.value.status == 404
    with pytest.raises(TwilioRestException) as info:
        await off_loop(lambda: client.calls(call_sid).recordings.create(recording_channels="3d"))
    assert info.value.status == 400
    created = await off_loop(lambda: client.calls(call_sid).recordings.create())
    with pytest.raises(TwilioRestException) as info:
        await off_loop(lambda: client.calls(call_sid).recordings(created.sid).update(
            status="rewinding"))
    assert info.value.status == 400
    recordings = await adapter.ctx.store.list_recordings(ACCOUNT_SID, call_sid=call_sid)  # type: ignore[union-attr]
    assert [r.sid for r in recordings] == [created.sid]  # nothing else started on the PBX


async def test_url_redirect_stops_a_record_from_outside(
    adapter: Adapter, app: TwimlApp, ami: Any
) -> None:
    response = VoiceResponse()
    response.say("Leave a message.")
    response.redirect("/record")
    app.answer("/voice", response)
    record = VoiceResponse()
    record.record(action="/done", timeout=0, max_length=60, recording_status_callback="/rec")
    app.answer("/record", record)
    after = VoiceResponse()
    after.say("Thanks.")
    after.hangup()
    app.answer("/new", after)
    await originate(ami, CallerScript.SPEAK_LOOP, "+15557650000", from_number="+15551230005",
                    caller_name="REST Caller", variables={"DURATION_S": "40"})
    started = await app.next_request("/record")
    call_sid = started.params["CallSid"]
    await asyncio.sleep(3)  # three seconds of message (not a synchronisation)
    client = sdk(adapter)
    await off_loop(lambda: client.calls(call_sid).update(url=app.url("/new"), method="GET"))
    new = await app.next_request("/new")
    assert new.method == "GET" and new.signature_valid
    assert new.params["CallSid"] == call_sid and new.params["CallStatus"] == "in-progress"
    done = await completed_callback(app)
    assert done["RecordingStatus"] == "completed"
    assert 2 <= int(done["RecordingDuration"]) <= 5
    assert await asyncio.wait_for(adapter.finished.get(), 30) == call_sid
    assert app.received("/done") == []  # the new TwiML replaced the <Record>'s action


async def test_twiml_redirect_ends_a_pause(adapter: Adapter, app: TwimlApp, ami: Any) -> None:
    call_sid = await live_call(adapter, app, ami, seconds=60)
    client = sdk(adapter)
    await off_loop(lambda: client.calls(call_sid).update(
        twiml="<Response><Redirect method='GET'>/last</Redirect></Response>"))
    last = await app.next_request("/last", within=10)
    assert last.params["CallSid"] == call_sid
    assert await asyncio.wait_for(adapter.finished.get(), 30) == call_sid


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


async def test_canceled_leaves_an_answered_call_alone(adapter: Adapter, app: TwimlApp,
                                                      ami: Any) -> None:
    """Twilio: ``Status=canceled`` "will not affect calls already in progress";
    ``Status=completed`` ends them."""
    call_sid = await live_call(adapter, app, ami, seconds=30)
    client = sdk(adapter)
    unchanged = await off_loop(lambda: client.calls(call_sid).update(status="canceled"))
    assert unchanged.status == "in-progress"
    assert call_sid in adapter.sessions
    assert not adapter.sessions[call_sid].call.hung_up.is_set()
    ended = await off_loop(lambda: client.calls(call_sid).update(status="completed"))
    assert ended.status == "completed"
    assert await asyncio.wait_for(adapter.finished.get(), 20) == call_sid
