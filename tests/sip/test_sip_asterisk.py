"""Real SIP calls into the real Asterisk: sipp (Debian's sip-tester) as the trunk's caller sends
an INVITE with SDP to the PJSIP trunk of dialplan/asterisk/pjsip_twiml.conf (the lab binds it to
127.0.0.1 on a free port: tests/labs/asterisk_lab.py), Asterisk routes it into ``[twiml]`` and
hands it to the adapter over AsyncAGI. The caller's RTP is a pcap the test writes
(tests/support/sipp.py): a known 440 Hz WAV as G.711 (PCMU or PCMA, the only codec offered) and
RFC 4733 telephone-events for the keys, so the recording can be checked for the caller's tone."""

from __future__ import annotations

from pathlib import Path

import pytest
from adapter_harness import adapter_config, call_reported, media_file, running_adapter
from asterisk_lab import AsteriskLab, AsteriskPbx
from sip_audio import (
    TO,
    assert_caller_tone,
    assert_dual_caller_callee,
    call_through_to_a_sipp_callee,
    silence,
    tone440,
)
from sipp import (
    Dtmf,
    answered_uac,
    free_udp_port,
    rejected_uac,
    start_sipp,
    write_rtp_pcap,
)
from twilio.twiml.voice_response import Dial, VoiceResponse
from twiml_app import TwimlApp, start_recording

from adapter.service import Adapter

pytestmark = pytest.mark.asterisk

FROM = "+15551230009"  # the From user of tests/support/sipp.py's scenarios


def sip_address(lab: AsteriskPbx) -> tuple[str, int]:
    assert isinstance(lab, AsteriskLab), "the SIP tests need the chroot lab's PJSIP trunk"
    return lab.sip_address


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
async def test_record_ended_by_the_callers_hash(
    asterisk_lab: AsteriskPbx, adapter: Adapter, app: TwimlApp, tmp_path: Path, codec: str
) -> None:
    """<Record finishOnKey="#">: the caller's 3 s of 440 Hz is in the file, its RFC 4733 `#`
    ends the recording (Digits=#), and the action's <Hangup> sends the BYE to the caller."""
    response = VoiceResponse()
    response.record(action="/done", finish_on_key="#", recording_status_callback="/status")
    app.answer("/voice", response)
    hang_up = VoiceResponse()
    hang_up.hangup()
    app.answer("/done", hang_up)
    pcap = write_rtp_pcap(tmp_path / "caller.pcap", [
        silence(1.0), tone440(tmp_path, 3.0), silence(0.5), Dtmf("#"), silence(4.0)], codec)
    sipp = await start_sipp(answered_uac(pcap, codec, hang_up_after_ms=None), tmp_path,
                            call=(TO, sip_address(asterisk_lab)))
    voice = await app.next_request("/voice", within=15)
    assert voice.signature_valid
    assert voice.params["To"] == TO and voice.params["From"] == FROM
    assert voice.params["CallStatus"] == "ringing"
    done = await app.next_request("/done", within=30)
    assert done.params["Digits"] == "#" and done.params["CallStatus"] == "in-progress"
    assert 2 <= int(done.params["RecordingDuration"]) <= 4
    returncode, output = await sipp.result()
    assert returncode == 0, output  # the 200 chose `codec`; Asterisk sent the BYE
    assert await call_reported(adapter) == voice.params["CallSid"]
    (completed,) = app.received("/status")
    assert completed.params["RecordingStatus"] == "completed"
    assert_caller_tone(media_file(adapter, done.params["RecordingSid"]))
    row = await adapter.ctx.store.get_call(voice.params["CallSid"])  # type: ignore[union-attr]
    assert row is not None and row.status == "completed"


async def test_caller_bye_mid_record(
    asterisk_lab: AsteriskPbx, adapter: Adapter, app: TwimlApp, tmp_path: Path
) -> None:
    """The caller sends BYE 4 s into the call, while <Record> runs: Digits=hangup, the call is
    completed, and the recording (completed) holds the caller's tone up to the BYE."""
    response = VoiceResponse()
    response.record(action="/done", recording_status_callback="/status")
    response.say("Never heard.")
    app.answer("/voice", response)
    app.answer("/done", VoiceResponse())
    pcap = write_rtp_pcap(tmp_path / "caller.pcap",
                          [silence(1.0), tone440(tmp_path, 8.0)], "PCMU")
    sipp = await start_sipp(answered_uac(pcap, "PCMU", hang_up_after_ms=4000), tmp_path,
                            call=(TO, sip_address(asterisk_lab)))
    voice = await app.next_request("/voice", within=15)
    done = await app.next_request("/done", within=30)
    assert done.params["Digits"] == "hangup" and done.params["CallStatus"] == "completed"
    assert 1 <= int(done.params["RecordingDuration"]) <= 4
    returncode, output = await sipp.result()
    assert returncode == 0, output  # our BYE got its 200, and no BYE came first
    assert await call_reported(adapter) == voice.params["CallSid"]
    (completed,) = app.received("/status")
    assert completed.params["RecordingStatus"] == "completed"
    assert_caller_tone(media_file(adapter, done.params["RecordingSid"]))
    row = await adapter.ctx.store.get_call(voice.params["CallSid"])  # type: ignore[union-attr]
    assert row is not None and row.status == "completed"


@pytest.mark.parametrize(("reason", "status", "call_status"), [
    ("busy", 486, "busy"),
    ("rejected", 603, "no-answer"),
])
async def test_reject_answers_the_invite_with_its_sip_status(
    asterisk_lab: AsteriskPbx, adapter: Adapter, app: TwimlApp, tmp_path: Path,
    reason: str, status: int, call_status: str
) -> None:
    """<Reject> as the first verb: the trunk gets Twilio's SIP status, never a 200: 486 Busy
    Here for busy, 603 Decline for rejected (PJSIPHangup: chan_pjsip would turn cause 21 into
    403 Forbidden). The call ends as Twilio reports a rejected call (busy, or no-answer)."""
    response = VoiceResponse()
    response.reject(reason=reason)
    app.answer("/voice", response)
    sipp = await start_sipp(rejected_uac(status), tmp_path,
                            call=(TO, sip_address(asterisk_lab)))
    voice = await app.next_request("/voice", within=15)
    assert voice.params["From"] == FROM and voice.params["CallStatus"] == "ringing"
    returncode, output = await sipp.result()
    assert returncode == 0, output
    assert await call_reported(adapter) == voice.params["CallSid"]
    row = await adapter.ctx.store.get_call(voice.params["CallSid"])  # type: ignore[union-attr]
    assert row is not None and row.status == call_status


async def test_start_recording_dual_on_a_dialled_sip_party(
    asterisk_lab: AsteriskPbx, ami: object, app: TwimlApp, tmp_path: Path
) -> None:
    """<Start><Recording channels="dual"> then <Dial><Sip> to a second sipp (the UAS) through
    the same PJSIP trunk (asterisk.dial_sip = PJSIP/trunk/{uri}): the caller plays 440 Hz, the
    callee 1000 Hz; the stereo recording has the caller on channel 1 and the callee on
    channel 2. The caller hangs up (BYE) 6 s in; Asterisk then sends the callee its BYE."""
    callee_port = free_udp_port()
    response = VoiceResponse()
    response.append(start_recording(channels="dual", recording_status_callback="/rec"))
    dial = Dial(action="/dialed")
    dial.sip(f"sip:callee@127.0.0.1:{callee_port}")
    response.append(dial)
    app.answer("/voice", response)
    app.answer("/dialed", VoiceResponse())
    config = adapter_config(asterisk_lab, tmp_path / "data", app.url("/voice"),
                            TWIML_ADAPTER_ASTERISK_DIAL_SIP="PJSIP/trunk/{uri}")
    async with running_adapter(config) as adapter:
        await call_through_to_a_sipp_callee(adapter, app, tmp_path,
                                            trunk=sip_address(asterisk_lab),
                                            callee_port=callee_port)
        (dialed,) = app.received("/dialed")
        assert dialed.params["DialCallStatus"] == "completed"  # the sipp callee answered
        (completed,) = app.received("/rec")
        assert completed.params["RecordingStatus"] == "completed"
        assert completed.params["RecordingChannels"] == "2"
        assert_dual_caller_callee(media_file(adapter, completed.params["RecordingSid"]),
                                  start=2.0)


async def test_dial_record_dual_on_a_dialled_sip_party(
    asterisk_lab: AsteriskPbx, ami: object, app: TwimlApp, tmp_path: Path
) -> None:
    """<Dial record="record-from-answer-dual"> to a sipp UAS through the PJSIP trunk: a
    recording of the parent call (RecordingSource DialVerb), the caller's 440 Hz on channel 1,
    the callee's 1000 Hz on channel 2; the action request carries it."""
    callee_port = free_udp_port()
    response = VoiceResponse()
    dial = Dial(action="/dialed", record="record-from-answer-dual",
                recording_status_callback="/rec")
    dial.sip(f"sip:callee@127.0.0.1:{callee_port}")
    response.append(dial)
    app.answer("/voice", response)
    app.answer("/dialed", VoiceResponse())
    config = adapter_config(asterisk_lab, tmp_path / "data", app.url("/voice"),
                            TWIML_ADAPTER_ASTERISK_DIAL_SIP="PJSIP/trunk/{uri}")
    async with running_adapter(config) as adapter:
        call_sid = await call_through_to_a_sipp_callee(
            adapter, app, tmp_path, trunk=sip_address(asterisk_lab), callee_port=callee_port)
        (completed,) = app.received("/rec")
        assert completed.signature_valid
        assert completed.params["CallSid"] == call_sid
        assert completed.params["RecordingSource"] == "DialVerb"
        assert completed.params["RecordingChannels"] == "2"
        (dialed,) = app.received("/dialed")
        assert dialed.params["DialCallStatus"] == "completed"
        assert dialed.params["RecordingSid"] == completed.params["RecordingSid"]
        assert_dual_caller_callee(media_file(adapter, completed.params["RecordingSid"]),
                                  start=1.0)
