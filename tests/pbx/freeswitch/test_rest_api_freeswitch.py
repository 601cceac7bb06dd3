"""Outbound REST calls (`POST Calls.json`) on the FreeSWITCH driver, driven by the official
`twilio` client against a running adapter on the real FreeSWITCH 1.10.12 of the test session
(`conftest.freeswitch_real`) with the shipped dialplan/freeswitch/twiml.xml. The adapter dials
lab.xml's callees (``loopback/{number}/lab``): 2000 answers after 1 s and sends 1000 Hz for 4 s,
2001 is busy, 2002 rings for ever, 2003 does not exist, 2004 answers and talks until hung up,
2005 declines. What FreeSWITCH did is read from its own events
(tests/labs/freeswitch_outbound_lab.py).
The rest of the REST API (among it an outbound call with its recording, and one that rings
and is canceled) runs on both PBXs in tests/interpreter/test_rest_api.py."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN
from freeswitch_lab import FreeSwitchStack, RealFreeSwitch, freeswitch_under_test
from freeswitch_outbound_lab import (
    job_result,
    originated,
    place_raw_call,
    reached_adapter,
)
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twiml_app import TwimlApp

from adapter.service import Adapter

T = TypeVar("T")


Rig = tuple[Adapter, RealFreeSwitch]


@pytest.fixture
async def rig(freeswitch_real: FreeSwitchStack, tmp_path: Path,
              app: TwimlApp) -> AsyncIterator[Rig]:
    async with freeswitch_under_test(freeswitch_real, tmp_path, app.url("/voice"),
                                     serve_http=True) as (adapter, fs):
        assert isinstance(fs, RealFreeSwitch)
        yield adapter, fs


async def off_loop(call: Callable[[], T]) -> T:
    return await asyncio.to_thread(call)


def sdk(adapter: Adapter) -> Client:
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = adapter.config.http.public_base_url
    return client


@pytest.mark.parametrize(("to", "cause", "status"), [
    ("2001", "USER_BUSY", "busy"),
    ("2005", "CALL_REJECTED", "busy"),
    ("2002", "NO_ANSWER", "no-answer"),   # rings out: originate_timeout
    ("2003", "UNALLOCATED_NUMBER", "failed"),
])
async def test_outbound_call_not_answered(rig: Rig, app: TwimlApp, to: str, cause: str,
                                          status: str) -> None:
    adapter, fs = rig
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
    (attempt,) = await originated(fs, at_least=1)
    assert (await job_result(fs, attempt.channel)).body.strip() == f"-ERR {cause}"
    await fs.sync()
    assert not reached_adapter(fs, attempt.channel)


async def test_outbound_call_command_and_refused_values(rig: Rig,
                                                        app: TwimlApp) -> None:
    adapter, fs = rig
    client = sdk(adapter)
    call = await off_loop(lambda: client.calls.create(
        to="2004", from_="+15550001234", twiml="<Response><Hangup/></Response>", timeout=15))
    assert await asyncio.wait_for(adapter.finished.get(), 30) == call.sid
    (attempt,) = await originated(fs, at_least=1)
    assert attempt.command == (
        f"originate {{origination_uuid={attempt.channel},originate_timeout=15,"
        "ignore_early_media=true,origination_caller_id_number=+15550001234,"
        f"twiml_call_sid={call.sid}}}loopback/2004/lab {call.sid} XML twiml-outbound")
    assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", attempt.channel)
    # 2004 talks until hung up: the <Hangup/> ended it at once, on the adapter's socket
    hangup = await fs.wait_event(lambda e: e.name == "CHANNEL_HANGUP_COMPLETE"
                                 and e.unique_id == attempt.channel)
    assert hangup.get("Hangup-Cause") == "NORMAL_CLEARING"
    assert hangup.variable("current_application") == "socket"
    answered_us = int(hangup.get("Caller-Channel-Answered-Time"))
    hung_up_us = int(hangup.get("Caller-Channel-Hangup-Time"))
    # Ended at once. (Once, on a loaded machine, FreeSWITCH gave the two the same stamp.)
    assert answered_us > 0 and 0 <= hung_up_us - answered_us < 5_000_000, (answered_us,
                                                                            hung_up_us)
    for from_, to, code in [("+1555,origination_uuid=x", "2000", 21212),
                            ("+1555}sofia/evil/1", "2000", 21212),
                            ("+1555 2000 XML default", "2000", 21212),
                            ("+15550001234", "2000,sofia/gateway/trunk/2001", 21211),
                            ("+15550001234", "2000}x", 21211)]:
        with pytest.raises(TwilioRestException) as info:
            await off_loop(functools.partial(client.calls.create, to=to, from_=from_,
                                             twiml="<Response/>"))
        assert info.value.code == code, (from_, to)
    assert len(await originated(fs)) == 1


async def test_trunk_call_with_the_marker_is_not_adopted(rig: Rig,
                                                         app: TwimlApp) -> None:
    """A trunk call that carries ``twiml_call_sid`` of a ringing outbound call is an inbound
    call to its number: it does not take the outbound call's place or TwiML."""
    adapter, fs = rig
    app.answer("/outbound", "<Response><Say>for the callee only</Say></Response>")
    app.answer("/voice", "<Response><Hangup/></Response>")
    client = sdk(adapter)
    call = await off_loop(lambda: client.calls.create(
        to="2002", from_="+15550001234", url=app.url("/outbound"), timeout=10))
    # leg B of this trunk call runs in context twiml, carrying twiml_call_sid=<the SID>
    forged = await place_raw_call(fs, to="+15557650000", context="twiml",
                                  from_="+15551230009", variables={"twiml_call_sid": call.sid})
    voice = await app.next_request("/voice")
    assert voice.params["Direction"] == "inbound" and voice.params["CallSid"] != call.sid
    inbound_sid = voice.params["CallSid"]
    assert await asyncio.wait_for(adapter.finished.get(), 30) == inbound_sid
    assert call.sid in adapter.pending_outbound  # still waiting for its own answer
    # ... which never comes: no-answer, and its TwiML was never fetched
    assert await asyncio.wait_for(adapter.finished.get(), 30) == call.sid
    assert (await off_loop(lambda: client.calls(call.sid).fetch())).status == "no-answer"
    assert not app.received("/outbound")
    (attempt,) = await originated(fs, at_least=1)
    assert not reached_adapter(fs, attempt.channel)
    with_marker = fs.seen(lambda e: e.name == "CHANNEL_EXECUTE"
                          and e.get("Application") == "socket"
                          and e.variable("twiml_call_sid") == call.sid)
    # what reached the adapter carrying the marker: the trunk call's leg B, in context twiml
    assert [(e.variable("other_loopback_leg_uuid"), e.get("Caller-Context"))
            for e in with_marker] == [(forged, "twiml")]
    await fs.api(f"uuid_kill {forged}")


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
    return str(call.sid)


async def test_completed_on_a_ringing_call_cancels_it(rig: Rig,
                                                      app: TwimlApp) -> None:
    adapter, fs = rig
    client = sdk(adapter)
    call_sid = await ringing_call(adapter, app)
    ended = await off_loop(lambda: client.calls(call_sid).update(status="completed"))
    assert ended.status == "canceled"
    assert await asyncio.wait_for(adapter.finished.get(), 20) == call_sid
    final = await app.next_request("/status", within=10)
    assert final.params["CallStatus"] == "canceled" and final.params["CallDuration"] == "0"
    assert (await off_loop(lambda: client.calls(call_sid).fetch())).status == "canceled"
    (attempt,) = await originated(fs, at_least=1)
    assert (await job_result(fs, attempt.channel)).body.strip() == "-ERR ORIGINATOR_CANCEL"
    hangup = await fs.wait_event(lambda e: e.name == "CHANNEL_HANGUP_COMPLETE"
                                 and e.unique_id == attempt.channel)
    assert hangup.get("Hangup-Cause") == "ORIGINATOR_CANCEL"


async def test_canceled_leaves_an_answered_outbound_call_alone(
        rig: Rig, app: TwimlApp) -> None:
    """Twilio: ``Status=canceled`` "will not affect calls already in progress": nothing is
    killed and the call goes on; ``completed`` then ends it."""
    adapter, fs = rig
    app.answer("/outbound", "<Response><Pause length='60'/></Response>")
    client = sdk(adapter)
    call = await off_loop(lambda: client.calls.create(
        to="2004", from_="+15550001234", url=app.url("/outbound"),
        status_callback=app.url("/status"), status_callback_event=EVENTS))
    fetched = await app.next_request("/outbound")
    assert fetched.params["CallStatus"] == "in-progress"
    unchanged = await off_loop(lambda: client.calls(call.sid).update(status="canceled"))
    assert unchanged.status == "in-progress"
    assert not [c for c in await fs.api_commands_so_far() if "uuid_kill" in c]
    assert call.sid in adapter.sessions
    assert not adapter.sessions[call.sid].call.hung_up.is_set()
    (attempt,) = await originated(fs, at_least=1)
    assert reached_adapter(fs, attempt.channel)
    assert not fs.seen(lambda e: e.name == "CHANNEL_HANGUP" and e.unique_id == attempt.channel)
    ended = await off_loop(lambda: client.calls(call.sid).update(status="completed"))
    assert ended.status == "completed"
    assert await asyncio.wait_for(adapter.finished.get(), 20) == call.sid
    await adapter.ctx.outbox.wait_idle(20)  # type: ignore[union-attr]
    statuses = [r.params["CallStatus"] for r in app.received("/status")]
    assert statuses == ["queued", "ringing", "in-progress", "completed"]
