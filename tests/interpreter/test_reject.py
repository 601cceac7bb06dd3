"""`<Reject>` on both PBXs (a real Asterisk 22, a real FreeSWITCH 1.10.12), as Twilio documents
it: as the first verb the call is never answered and ends ``busy`` (``reason="busy"``) or
``no-answer`` (``rejected``, the default); the PBX hangs the channel up with the matching cause
(USER_BUSY, CALL_REJECTED), which its SIP stack answers the trunk's INVITE with (486, 603:
tests/sip/test_sip_freeswitch.py checks that on the wire). After the answer, `<Reject>` only ends
the call, which is then ``completed``.

What each PBX did is read from its own events: Asterisk's AMI (``Hangup`` with ``Cause`` of the
adapter's channel, ``AGIExecStart`` of any ``ANSWER``), FreeSWITCH's ESL
(``CHANNEL_HANGUP_COMPLETE`` with ``Hangup-Cause``, any ``CHANNEL_ANSWER``). The rigs are the
shared suites' (tests/support/pbx_rigs.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pbx_rigs
import pytest
from asterisk_lab import AmiEventLog
from freeswitch_lab import RealFreeSwitch
from pbx_rigs import AsteriskRig, Caller, FreeSwitchRig, Rig, finished
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import TwimlApp

pbx, rig = pbx_rigs.pbx, pbx_rigs.rig  # the shared suites' fixtures

# Q.850 causes as FreeSWITCH names them; Asterisk reports the numbers.
Q850 = {"16": "NORMAL_CLEARING", "17": "USER_BUSY", "21": "CALL_REJECTED"}


@dataclass(frozen=True)
class Ended:
    cause: str  # the adapter's channel's hang-up cause, in FreeSWITCH's words
    answered: bool  # whether the PBX ever answered the adapter's channel


async def ended_on_the_pbx(rig: Rig, channel: str, watch: AmiEventLog | None) -> Ended:
    """How the PBX ended the adapter's `channel`, and whether it had answered it."""
    if isinstance(rig, AsteriskRig):
        assert watch is not None
        hangup = await watch.wait_for("Hangup", lambda e: e.get("Uniqueid") == channel)
        answers = watch.matching("AGIExecStart", lambda e: e.get("Uniqueid") == channel
                                 and str(e.get("Command", "")).startswith("ANSWER"))
        return Ended(Q850.get(str(hangup.get("Cause")), str(hangup.get("Cause"))), bool(answers))
    assert isinstance(rig, FreeSwitchRig) and isinstance(rig.fs, RealFreeSwitch)
    hangup = await rig.fs.wait_event(
        lambda e: e.name == "CHANNEL_HANGUP_COMPLETE" and e.unique_id == channel)
    await rig.fs.sync()
    answers = rig.fs.seen(lambda e: e.name == "CHANNEL_ANSWER" and e.unique_id == channel)
    return Ended(hangup.get("Hangup-Cause"), bool(answers))


async def rejected_call(rig: Rig, app: TwimlApp, response: VoiceResponse) -> tuple[str, Ended]:
    """A call whose app answers `response`: its CallSid and how the PBX ended it."""
    app.answer("/voice", response)
    watch = AmiEventLog(rig.ami) if isinstance(rig, AsteriskRig) else None
    await rig.call(Caller(speaks=False))
    voice = await app.next_request("/voice")
    call_sid = voice.params["CallSid"]
    assert await finished(rig) == call_sid
    row = await rig.adapter.ctx.store.get_call(call_sid)  # type: ignore[union-attr]
    assert row is not None
    return call_sid, await ended_on_the_pbx(rig, row.pbx_channel, watch)


@pytest.mark.parametrize(("reason", "cause", "status"), [
    ("busy", "USER_BUSY", "busy"),
    ("rejected", "CALL_REJECTED", "no-answer"),
    (None, "CALL_REJECTED", "no-answer"),  # Twilio's default reason
])
async def test_reject_first_is_never_answered(rig: Rig, app: TwimlApp, reason: str | None,
                                              cause: str, status: str) -> None:
    response = VoiceResponse()
    if reason is None:
        response.reject()
    else:
        response.reject(reason=reason)
    response.say("Never heard.")  # unreachable after <Reject>
    call_sid, ended = await rejected_call(rig, app, response)
    assert ended == Ended(cause, answered=False)
    row = await rig.adapter.ctx.store.get_call(call_sid)  # type: ignore[union-attr]
    assert row is not None and row.status == status


async def test_reject_after_the_answer_only_ends_the_call(rig: Rig, app: TwimlApp) -> None:
    response = VoiceResponse()
    response.pause(length=1)
    response.say("Goodbye.")
    response.reject(reason="busy")
    call_sid, ended = await rejected_call(rig, app, response)
    assert ended.answered
    row = await rig.adapter.ctx.store.get_call(call_sid)  # type: ignore[union-attr]
    assert row is not None and row.status == "completed"
