"""`<Dial>`'s child call on both PBXs (a real Asterisk 22, a real FreeSWITCH 1.10.12): its row is
``in-progress`` from the callee's answer on, before the `<Dial>` ends (so a crash during the
bridge leaves it ``completed`` for recovery, not ``canceled``:
tests/recovery/test_fault_injection_freeswitch.py), and ``completed`` with the bridged seconds
at the end. The rigs are the shared suites' (tests/support/pbx_rigs.py)."""

from __future__ import annotations

import asyncio

import pbx_rigs
import pytest
from adapter_harness import ACCOUNT_SID, media_file
from asterisk_lab import CALLEE_BUSY, CALLEE_NO_ANSWER, CALLEE_TONE1000, CALLEES_CONTEXT
from audio_checks import channel_samples, tone_power
from dial_calls import kind_of, run_call
from pbx_rigs import AsteriskRig, Caller, FreeSwitchRig, Rig, finished
from twilio.twiml.voice_response import Start, VoiceResponse
from twiml_app import TwimlApp

from adapter.db.store import CallRow
from adapter.recordings import media

pbx, rig = pbx_rigs.pbx, pbx_rigs.rig  # the shared suites' fixtures

# A callee that answers and talks 4 s, then hangs up: Asterisk's lab, FreeSWITCH's lab.xml
# (whose 2000 rings 1 s first); one that is busy, one that never answers; a SIP URI of the first.
ANSWERS_THEN_HANGS_UP = {"asterisk": CALLEE_TONE1000, "freeswitch": "2000"}
UNANSWERED = {"busy": {"asterisk": CALLEE_BUSY, "freeswitch": "2001"},
              "no-answer": {"asterisk": CALLEE_NO_ANSWER, "freeswitch": "2002"}}
SIP_URI = {"asterisk": f"sip:{CALLEE_TONE1000}@{CALLEES_CONTEXT}",
           "freeswitch": "sip:2000@callees.example.com"}


async def child_of(rig: Rig, parent: str, status: str, within: float = 15.0) -> CallRow:
    """The parent's child call once its row says `status` (the adapter writes it as the PBX
    reports the answer; the test polls the database, which has no event of its own)."""
    store = rig.adapter.ctx.store  # type: ignore[union-attr]
    async with asyncio.timeout(within):
        while True:
            rows = [r for r in await store.list_calls(ACCOUNT_SID, limit=20)
                    if r.parent_call_sid == parent]
            if rows and rows[0].status == status:
                return rows[0]
            await asyncio.sleep(0.05)


async def test_the_child_call_is_in_progress_from_the_answer(rig: Rig, app: TwimlApp) -> None:
    kind = kind_of(rig)
    response = VoiceResponse()
    response.dial(ANSWERS_THEN_HANGS_UP[kind], action="/dialed", timeout=10)
    app.answer("/voice", response)
    app.answer("/dialed", VoiceResponse())
    await rig.call(Caller(speaks=False))
    parent = (await app.next_request("/voice")).params["CallSid"]
    child = await child_of(rig, parent, "in-progress")
    assert app.received("/dialed") == []  # the <Dial> is still going on
    dialed = await app.next_request("/dialed", within=20)
    assert dialed.params["DialCallSid"] == child.sid
    assert dialed.params["DialCallStatus"] == "completed"
    await finished(rig)
    final = await child_of(rig, parent, "completed")
    assert final.duration is not None and 3 <= final.duration <= 5



async def test_bridged_call_recorded_dual(rig: Rig, app: TwimlApp) -> None:
    adapter = rig.adapter
    response = VoiceResponse()
    start = Start()
    start.recording(recording_status_callback="/rec")
    response.append(start)
    response.dial(ANSWERS_THEN_HANGS_UP[kind_of(rig)], action="/dialed", timeout=10,
                  caller_id="+15550009999")
    app.answer("/dialed", VoiceResponse())
    call_sid = await run_call(rig, app, response)

    (dialed,) = app.received("/dialed")
    assert dialed.signature_valid
    assert dialed.params["CallSid"] == call_sid
    assert dialed.params["DialCallStatus"] == "completed"
    assert dialed.params["DialBridged"] == "true"
    # the callee hangs up after 4 s
    if isinstance(rig, AsteriskRig):
        assert 3 <= int(dialed.params["DialCallDuration"]) <= 5
    else:
        assert dialed.params["DialCallDuration"] in ("4", "5")
    child_sid = dialed.params["DialCallSid"]
    assert child_sid.startswith("CA") and child_sid != call_sid
    child = await adapter.ctx.store.get_call(child_sid)  # type: ignore[union-attr]
    assert child is not None
    assert child.parent_call_sid == call_sid
    assert child.direction == "outbound-dial" and child.from_ == "+15550009999"
    if isinstance(rig, FreeSwitchRig):
        # FreeSWITCH bridged the caller's leg to the child's channel, with the caller id.
        await rig.fs.sync()
        (bridge,) = rig.fs.seen(lambda e: e.name == "CHANNEL_BRIDGE")
        assert child.pbx_channel == bridge.get("Other-Leg-Unique-ID")
        (callee_answer,) = rig.fs.seen(lambda e: e.name == "CHANNEL_ANSWER"
                                       and e.unique_id == child.pbx_channel)
        assert callee_answer.get("Caller-Caller-ID-Number") == "+15550009999"

    (completed,) = app.received("/rec")
    assert completed.signature_valid
    assert completed.params["CallSid"] == call_sid  # always the parent call
    assert completed.params["RecordingChannels"] == "2"
    wav = media_file(adapter, completed.params["RecordingSid"])
    assert media.wav_info(wav).channels == 2
    # Over the bridged seconds (on FreeSWITCH the callee rings 1 s first): channel 1 the caller
    # (440 Hz), channel 2 the callee (1000 Hz).
    bridged_from = 1.0 if isinstance(rig, AsteriskRig) else 2.0
    caller = channel_samples(wav, 0, start=bridged_from, length=2.0)
    callee = channel_samples(wav, 1, start=bridged_from, length=2.0)
    assert tone_power(caller, 440) > 20 * tone_power(caller, 1000)
    assert tone_power(callee, 1000) > 20 * tone_power(callee, 440)


@pytest.mark.parametrize("status", ["busy", "no-answer"])
async def test_unanswered_dial_reports_status_and_next_verb_runs(
    rig: Rig, app: TwimlApp, status: str
) -> None:
    response = VoiceResponse()
    response.dial(UNANSWERED[status][kind_of(rig)], action="/dialed", timeout=5)
    after = VoiceResponse()
    after.redirect("/after")
    app.answer("/dialed", after)
    app.answer("/after", VoiceResponse())
    await run_call(rig, app, response)
    (dialed,) = app.received("/dialed")
    assert dialed.params["DialCallStatus"] == status
    assert dialed.params["DialBridged"] == "false"
    assert dialed.params["DialCallDuration"] == "0"
    assert app.received("/after"), "the action's TwiML runs after an unanswered <Dial>"
    if isinstance(rig, FreeSwitchRig):
        await rig.fs.sync()
        assert not rig.fs.seen(lambda e: e.name == "CHANNEL_BRIDGE")


async def test_dial_without_action_goes_on_with_the_next_verb(rig: Rig, app: TwimlApp) -> None:
    response = VoiceResponse()
    response.dial(ANSWERS_THEN_HANGS_UP[kind_of(rig)], timeout=10)
    response.redirect("/after")
    app.answer("/after", VoiceResponse())
    call_sid = await run_call(rig, app, response)
    (after,) = app.received("/after")
    assert after.params["CallSid"] == call_sid
    assert after.params["CallStatus"] == "in-progress"
    row = await rig.adapter.ctx.store.get_call(call_sid)  # type: ignore[union-attr]
    assert row is not None and row.account_sid == ACCOUNT_SID


async def test_dial_sip_uri(rig: Rig, app: TwimlApp) -> None:
    response = VoiceResponse()
    dial = response.dial(action="/dialed", timeout=10)
    dial.sip(SIP_URI[kind_of(rig)])
    app.answer("/dialed", VoiceResponse())
    await run_call(rig, app, response)
    (dialed,) = app.received("/dialed")
    assert dialed.params["DialCallStatus"] == "completed"
    assert dialed.params["DialBridged"] == "true"
    if isinstance(rig, FreeSwitchRig):
        await rig.fs.sync()
        (bridge,) = rig.fs.seen(lambda e: e.name == "CHANNEL_EXECUTE"
                                and e.get("Application") == "bridge")
        assert "loopback/sip:2000@callees.example.com/lab" in bridge.get("Application-Data")
