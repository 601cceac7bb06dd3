"""Real SIP calls into the real FreeSWITCH: sipp (Debian's sip-tester) as the trunk's caller
sends an INVITE with SDP to the SIP profile ``trunk`` (docker/freeswitch/conf/autoload_configs/
sofia.conf.xml, on 127.0.0.1 at the session's port), FreeSWITCH routes it into ``twiml``
(dialplan/freeswitch/twiml.xml) and hands it to the adapter, which answers with the app's
TwiML. As on Asterisk (test_sip_asterisk.py), the caller's RTP is a pcap the test writes
(tests/support/sipp.py): a known 440 Hz WAV as G.711 (PCMU or PCMA, the only codec offered)
and RFC 2833 telephone-events for the keys, so the recordings are checked for the caller's
tone; a second sipp is the `<Dial>`ed party (``freeswitch.dial_sip = sofia/trunk/{uri}``).
sipp's built-in ``uac`` scenario hangs up with a BYE after its call length; for a `<Reject>`,
`rejected_uac` expects the final status instead of a 200."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from adapter_harness import call_reported, media_file
from freeswitch_lab import FreeSwitchStack, freeswitch_under_test
from sip_audio import (
    TO,
    assert_caller_tone,
    assert_dual_caller_callee,
    call_through_to_a_sipp_callee,
    silence,
    tone440,
)
from sipp import (
    FROM,
    Dtmf,
    answered_uac,
    free_udp_port,
    rejected_uac,
    start_sipp,
    write_rtp_pcap,
)
from twilio.twiml.voice_response import Dial, VoiceResponse
from twiml_app import TwimlApp, start_recording

# <Dial><Sip> leaves through the same SIP profile, to the sipp callee's address.
DIAL_SIP_THROUGH_THE_TRUNK = {"TWIML_ADAPTER_FREESWITCH_DIAL_SIP": "sofia/trunk/{uri}"}


async def test_a_sip_call_reaches_the_adapter(
    freeswitch_real: FreeSwitchStack, app: TwimlApp, tmp_path: Path
) -> None:
    response = VoiceResponse()
    response.say("Hello.")
    response.pause(length=20)
    app.answer("/voice", response)
    host, port = freeswitch_real.sip_address
    async with freeswitch_under_test(freeswitch_real, tmp_path, app.url("/voice")) as (
            adapter, _fs):
        sipp = await asyncio.create_subprocess_exec(
            "sipp", "-sn", "uac", "-s", TO, f"{host}:{port}", "-i", "127.0.0.1",
            "-p", str(free_udp_port()), "-m", "1", "-d", "3000", "-timeout", "30s",
            "-nostdin", "-trace_err", "-error_file", str(tmp_path / "sipp-errors.log"),
            cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        voice = await app.next_request("/voice", within=15)
        assert voice.signature_valid
        assert voice.params["To"] == TO and voice.params["Called"] == TO
        assert voice.params["From"] == "sipp"  # the uac scenario's From user
        assert voice.params["CallStatus"] == "ringing"
        output, _ = await asyncio.wait_for(sipp.communicate(), 40)
        assert sipp.returncode == 0, output.decode(errors="replace")[-2000:]
        # sipp's BYE ended the call long before the 20 s pause.
        assert await asyncio.wait_for(adapter.finished.get(), 15) == voice.params["CallSid"]
        row = await adapter.ctx.store.get_call(voice.params["CallSid"])  # type: ignore[union-attr]
        assert row is not None and row.status == "completed"


@pytest.mark.parametrize(("reason", "status"), [("busy", 486), ("rejected", 603)])
async def test_reject_answers_the_invite_with_its_sip_status(
    freeswitch_real: FreeSwitchStack, app: TwimlApp, tmp_path: Path, reason: str, status: int
) -> None:
    """<Reject> as the first verb: the INVITE gets 486 Busy Here (busy) or 603 Decline
    (rejected), never a 200."""
    response = VoiceResponse()
    response.reject(reason=reason)
    app.answer("/voice", response)
    async with freeswitch_under_test(freeswitch_real, tmp_path, app.url("/voice")) as (
            adapter, _fs):
        sipp = await start_sipp(rejected_uac(status), tmp_path,
                                call=(TO, freeswitch_real.sip_address))
        voice = await app.next_request("/voice", within=15)
        assert voice.params["From"] == FROM and voice.params["CallStatus"] == "ringing"
        returncode, output = await sipp.result(within=40)
        assert returncode == 0, output
        assert await asyncio.wait_for(adapter.finished.get(), 15) == voice.params["CallSid"]
        row = await adapter.ctx.store.get_call(voice.params["CallSid"])  # type: ignore[union-attr]
        assert row is not None and row.status == ("busy" if reason == "busy" else "no-answer")


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
async def test_record_ended_by_the_callers_hash(
    freeswitch_real: FreeSwitchStack, app: TwimlApp, tmp_path: Path, codec: str
) -> None:
    """<Record finishOnKey="#">: the caller's 3 s of 440 Hz is in the file, its RFC 2833 `#`
    ends the recording (Digits=#), and the action's <Hangup> sends the BYE to the caller."""
    response = VoiceResponse()
    response.record(action="/done", finish_on_key="#", recording_status_callback="/status")
    app.answer("/voice", response)
    hang_up = VoiceResponse()
    hang_up.hangup()
    app.answer("/done", hang_up)
    pcap = write_rtp_pcap(tmp_path / "caller.pcap", [
        silence(1.0), tone440(tmp_path, 3.0), silence(0.5), Dtmf("#"), silence(4.0)], codec)
    async with freeswitch_under_test(freeswitch_real, tmp_path, app.url("/voice")) as (
            adapter, _fs):
        sipp = await start_sipp(answered_uac(pcap, codec, hang_up_after_ms=None), tmp_path,
                                call=(TO, freeswitch_real.sip_address))
        voice = await app.next_request("/voice", within=15)
        assert voice.signature_valid
        assert voice.params["To"] == TO and voice.params["From"] == FROM
        done = await app.next_request("/done", within=30)
        assert done.params["Digits"] == "#" and done.params["CallStatus"] == "in-progress"
        assert 2 <= int(done.params["RecordingDuration"]) <= 4
        returncode, output = await sipp.result()
        assert returncode == 0, output  # the 200 chose `codec`; FreeSWITCH sent the BYE
        assert await call_reported(adapter) == voice.params["CallSid"]
        (completed,) = app.received("/status")
        assert completed.params["RecordingStatus"] == "completed"
        assert_caller_tone(media_file(adapter, done.params["RecordingSid"]))
        row = await adapter.ctx.store.get_call(  # type: ignore[union-attr]
            voice.params["CallSid"])
        assert row is not None and row.status == "completed"


async def test_caller_bye_mid_record(
    freeswitch_real: FreeSwitchStack, app: TwimlApp, tmp_path: Path
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
    async with freeswitch_under_test(freeswitch_real, tmp_path, app.url("/voice")) as (
            adapter, _fs):
        sipp = await start_sipp(answered_uac(pcap, "PCMU", hang_up_after_ms=4000), tmp_path,
                                call=(TO, freeswitch_real.sip_address))
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
        row = await adapter.ctx.store.get_call(  # type: ignore[union-attr]
            voice.params["CallSid"])
        assert row is not None and row.status == "completed"


async def test_start_recording_dual_on_a_dialled_sip_party(
    freeswitch_real: FreeSwitchStack, app: TwimlApp, tmp_path: Path
) -> None:
    """<Start><Recording channels="dual"> then <Dial><Sip> to a second sipp (the UAS) through
    the same SIP profile: the caller plays 440 Hz, the callee 1000 Hz; the stereo recording has
    the caller on channel 1 and the callee on channel 2. The caller hangs up (BYE) 6 s in;
    FreeSWITCH then sends the callee its BYE."""
    callee_port = free_udp_port()
    response = VoiceResponse()
    response.append(start_recording(channels="dual", recording_status_callback="/rec"))
    dial = Dial(action="/dialed")
    dial.sip(f"sip:callee@127.0.0.1:{callee_port}")
    response.append(dial)
    app.answer("/voice", response)
    app.answer("/dialed", VoiceResponse())
    async with freeswitch_under_test(freeswitch_real, tmp_path, app.url("/voice"),
                                     environ=DIAL_SIP_THROUGH_THE_TRUNK) as (adapter, _fs):
        await call_through_to_a_sipp_callee(adapter, app, tmp_path,
                                            trunk=freeswitch_real.sip_address,
                                            callee_port=callee_port)
        (dialed,) = app.received("/dialed")
        assert dialed.params["DialCallStatus"] == "completed"  # the sipp callee answered
        (completed,) = app.received("/rec")
        assert completed.params["RecordingStatus"] == "completed"
        assert completed.params["RecordingChannels"] == "2"
        assert_dual_caller_callee(media_file(adapter, completed.params["RecordingSid"]),
                                  start=2.0)


async def test_dial_record_dual_on_a_dialled_sip_party(
    freeswitch_real: FreeSwitchStack, app: TwimlApp, tmp_path: Path
) -> None:
    """<Dial record="record-from-answer-dual"> to a sipp UAS through the SIP profile: a
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
    async with freeswitch_under_test(freeswitch_real, tmp_path, app.url("/voice"),
                                     environ=DIAL_SIP_THROUGH_THE_TRUNK) as (adapter, _fs):
        call_sid = await call_through_to_a_sipp_callee(
            adapter, app, tmp_path, trunk=freeswitch_real.sip_address, callee_port=callee_port)
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
