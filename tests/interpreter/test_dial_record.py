"""`<Dial record>` on both PBXs (a real Asterisk 22, a real FreeSWITCH 1.10.12): a recording of
the PARENT call (its CallSid, RecordingSource ``DialVerb``) from the ringing or from the
callee's answer to the end of the `<Dial>`; mono mixes both parties, dual puts the caller on
channel 1 and the dialed party on channel 2; its status callbacks are signed and shaped as
Twilio's, and the `<Dial>`'s action request carries RecordingUrl, RecordingSid and
RecordingDuration. The rigs are the shared suites' (tests/support/pbx_rigs.py)."""

from __future__ import annotations

import asyncio

import pbx_rigs
import pytest
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN, media_file
from asterisk_lab import CALLEE_BUSY, CALLEE_LONG, CALLEE_RINGS_2S
from audio_checks import tones_440_1000
from dial_calls import kind_of, run_call
from pbx_rigs import FreeSwitchRig, Keys, Rig, finished
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import ReceivedRequest, TwimlApp

from adapter.recordings import media

pbx, rig = pbx_rigs.pbx, pbx_rigs.rig  # the shared suites' fixtures

# Rings 2 s, answers, sends 1000 Hz for 3 s and hangs up (Asterisk's lab, FreeSWITCH's lab.xml).
RINGS_2S = {"asterisk": CALLEE_RINGS_2S, "freeswitch": "2008"}
BUSY = {"asterisk": CALLEE_BUSY, "freeswitch": "2001"}
# Answers and talks (1000 Hz) far longer than the test's call: 60 s, or until hung up.
TALKS_ON = {"asterisk": CALLEE_LONG, "freeswitch": "2004"}
RING_SECONDS = 2.0


async def dial_recorded(rig: Rig, app: TwimlApp, record: str, **attributes: str
                        ) -> tuple[str, ReceivedRequest, list[ReceivedRequest]]:
    """One call whose `<Dial record=…>` rings `RINGS_2S`: (CallSid, the action request, the
    recording's status callbacks)."""
    response = VoiceResponse()
    response.dial(RINGS_2S[kind_of(rig)], action="/dialed", timeout=10, record=record,
                  recording_status_callback="/dial-rec", **attributes)
    app.answer("/dialed", VoiceResponse())
    call_sid = await run_call(rig, app, response)
    (dialed,) = [r for r in app.received("/dialed") if r.params["CallSid"] == call_sid]
    callbacks = [r for r in app.received("/dial-rec") if r.params["CallSid"] == call_sid]
    return call_sid, dialed, callbacks


def wav_seconds(rig: Rig, sid: str) -> float:
    return media.wav_info(media_file(rig.adapter, sid)).duration  # type: ignore[arg-type]


async def test_record_from_ringing_is_longer_by_the_ring_time(rig: Rig, app: TwimlApp) -> None:
    lengths: dict[str, float] = {}
    for record in ("record-from-answer", "record-from-ringing"):
        call_sid, dialed, callbacks = await dial_recorded(rig, app, record)
        assert dialed.params["DialCallStatus"] == "completed"
        (completed,) = callbacks
        assert completed.signature_valid
        params = completed.params
        assert params["CallSid"] == call_sid  # the parent call's, not the child's
        assert params["AccountSid"] == ACCOUNT_SID
        assert params["RecordingStatus"] == "completed"
        assert params["RecordingSource"] == "DialVerb"
        assert params["RecordingChannels"] == "1"
        assert params["RecordingTrack"] == "both"
        sid = params["RecordingSid"]
        # The action request carries the recording, as on Twilio.
        assert dialed.params["RecordingSid"] == sid
        assert dialed.params["RecordingUrl"] == params["RecordingUrl"]
        assert dialed.params["RecordingDuration"] == params["RecordingDuration"]
        recording = await rig.adapter.ctx.store.get_recording(  # type: ignore[union-attr]
            ACCOUNT_SID, sid)
        assert recording is not None and recording.call_sid == call_sid
        wav = media_file(rig.adapter, sid)  # type: ignore[arg-type]
        assert media.wav_info(wav).channels == 1
        lengths[record] = wav_seconds(rig, sid)
        # Mono: both parties mixed, the callee's 1000 Hz and the caller's 440 Hz.
        caller, callee = tones_440_1000(wav, 0, start=lengths[record] - 2.0, length=1.0)
        assert caller > 0 and callee > 0
    # Both end with the <Dial>; the ringing one starts the ring time earlier.
    extra = lengths["record-from-ringing"] - lengths["record-from-answer"]
    assert RING_SECONDS - 0.7 <= extra <= RING_SECONDS + 0.7, lengths
    assert 2.3 <= lengths["record-from-answer"] <= 4.0, lengths


@pytest.mark.parametrize("record", ["record-from-answer-dual", "record-from-ringing-dual"])
async def test_dual_puts_the_caller_on_channel_1_and_the_callee_on_2(
        rig: Rig, app: TwimlApp, record: str) -> None:
    _, dialed, callbacks = await dial_recorded(
        rig, app, record, recording_status_callback_event="in-progress completed")
    assert [c.params["RecordingStatus"] for c in callbacks] == ["in-progress", "completed"]
    assert all(c.signature_valid for c in callbacks)
    in_progress, completed = callbacks
    assert in_progress.params["RecordingSid"] == completed.params["RecordingSid"]
    assert "RecordingDuration" not in in_progress.params
    assert completed.params["RecordingChannels"] == "2"
    assert completed.params["RecordingSource"] == "DialVerb"
    wav = media_file(rig.adapter, completed.params["RecordingSid"])  # type: ignore[arg-type]
    assert media.wav_info(wav).channels == 2
    answered_at = RING_SECONDS if record == "record-from-ringing-dual" else 0.0
    caller_440, caller_1000 = tones_440_1000(wav, 0, start=answered_at + 0.5, length=1.5)
    callee_440, callee_1000 = tones_440_1000(wav, 1, start=answered_at + 0.5, length=1.5)
    assert caller_440 > 20 * caller_1000
    assert callee_1000 > 20 * callee_440
    if answered_at:
        # While it rang: the caller on channel 1 already, nothing from the callee yet.
        ringing_440, _ = tones_440_1000(wav, 0, start=0.2, length=1.2)
        _, ringing_1000 = tones_440_1000(wav, 1, start=0.2, length=1.2)
        assert ringing_440 > 1000 * max(ringing_1000, 1.0), (ringing_440, ringing_1000)
    assert dialed.params["RecordingSid"] == completed.params["RecordingSid"]
    # The REST API shows it as Twilio would: the parent call's, source DialVerb, 2 channels.
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = rig.adapter.config.http.public_base_url  # type: ignore[union-attr]
    resource = await asyncio.to_thread(
        client.recordings(completed.params["RecordingSid"]).fetch)
    assert (resource.call_sid, resource.source, resource.channels, resource.status) == (
        completed.params["CallSid"], "DialVerb", 2, "completed")


async def test_no_answer_no_recording_from_answer(rig: Rig, app: TwimlApp) -> None:
    response = VoiceResponse()
    response.dial(BUSY[kind_of(rig)], action="/dialed", timeout=5, record="record-from-answer",
                  recording_status_callback="/dial-rec",
                  recording_status_callback_event="in-progress completed absent")
    app.answer("/dialed", VoiceResponse())
    call_sid = await run_call(rig, app, response)
    (dialed,) = app.received("/dialed")
    assert dialed.params["DialCallStatus"] == "busy"
    assert not {"RecordingUrl", "RecordingSid", "RecordingDuration"} & set(dialed.params)
    assert app.received("/dial-rec") == []
    rows = await rig.adapter.ctx.store.list_recordings(  # type: ignore[union-attr]
        ACCOUNT_SID, call_sid=call_sid)
    assert rows == []


async def test_the_callers_hang_up_ends_the_recording_with_the_dial(
        rig: Rig, app: TwimlApp) -> None:
    """The caller hangs up 6 s into the call while the callee talks on: the recording ends
    there, is completed and reported, and the action request (made after the hang-up, as
    Twilio does) still carries it."""
    response = VoiceResponse()
    response.dial(TALKS_ON[kind_of(rig)], action="/dialed", timeout=10,
                  record="record-from-answer-dual", recording_status_callback="/dial-rec")
    app.answer("/voice", response)
    app.answer("/dialed", VoiceResponse())
    await rig.call_pressing(Keys(lead_s=1, digits="", silence_s=5))
    call_sid = await finished(rig)
    dialed = await app.next_request("/dialed", within=30)
    completed = await app.next_request("/dial-rec", within=30)
    assert dialed.params["CallSid"] == completed.params["CallSid"] == call_sid
    assert dialed.params["CallStatus"] == "completed"
    assert dialed.params["DialCallStatus"] == "completed"
    assert completed.params["RecordingStatus"] == "completed"
    assert dialed.params["RecordingSid"] == completed.params["RecordingSid"]
    # Cut at the caller's hang-up (its script ends 6 s after it began; 1 s of slack for a
    # loaded machine), far before the callee's end (60 s, or never).
    seconds = wav_seconds(rig, completed.params["RecordingSid"])
    assert 2.0 <= seconds <= 7.0, seconds
    assert abs(int(completed.params["RecordingDuration"]) - seconds) <= 0.5


async def test_record_from_ringing_with_answer_on_bridge(rig: Rig, app: TwimlApp) -> None:
    """With answerOnBridge the caller is not answered while the callee rings; the recording
    from the ringing still starts before the bridge and holds the ringing, and the call is
    answered by the bridge (FreeSWITCH: ``uuid_record`` pre-answers the caller's leg, 183
    early media, as Twilio sends 180/183 before the bridge; its answer comes with the
    callee's)."""
    call_sid, dialed, callbacks = await dial_recorded(
        rig, app, "record-from-ringing", answer_on_bridge="true")
    assert dialed.params["DialCallStatus"] == "completed"
    assert dialed.params["DialBridged"] == "true"
    (completed,) = callbacks
    assert completed.params["RecordingStatus"] == "completed"
    assert completed.params["CallSid"] == call_sid
    seconds = wav_seconds(rig, completed.params["RecordingSid"])
    assert seconds >= RING_SECONDS + 2.3, seconds  # the ringing, then the callee's 3 s
    wav = media_file(rig.adapter, completed.params["RecordingSid"])  # type: ignore[arg-type]
    _, callee = tones_440_1000(wav, 0, start=seconds - 2.0, length=1.0)
    assert callee > 0
    if isinstance(rig, FreeSwitchRig):
        await rig.fs.sync()
        (recorded,) = rig.fs.seen(lambda e: e.name == "RECORD_START")
        answers = rig.fs.seen(lambda e: e.name == "CHANNEL_ANSWER")
        caller_answer = min(int(e.get("Event-Date-Timestamp")) for e in answers
                            if e.unique_id == recorded.unique_id)
        callee_answer = min(int(e.get("Event-Date-Timestamp")) for e in answers
                            if e.get("Caller-Destination-Number") == RINGS_2S["freeswitch"])
        assert caller_answer >= callee_answer
