"""TwiML operations → ESL text (`mapping`), the whitelists that guard it (`escape`), and how a
``record`` ended, from events shaped like the lab transcripts' (with their stale variables)."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
from esl_server.channel import FakeChannel

from adapter.pbx.base import RecordEnd
from adapter.pbx.freeswitch import mapping, replies
from adapter.pbx.freeswitch.escape import (
    UnsafeValue,
    esl_caller_id,
    esl_dial_endpoint,
    esl_dtmf,
    esl_header_value,
    esl_path,
    esl_terminators,
    esl_uuid,
)
from adapter.pbx.freeswitch.protocol import EslEvent, EslParser

ROOT = PurePosixPath("/var/spool/freeswitch/twiml")
UUID = "b20481ed-3a19-4708-912f-fc4d3beb6c21"
APP = "61f0dd76-d3c9-452d-8adc-9b0ea73a91b8"
PATH = "/var/spool/freeswitch/twiml/recordings/CA1/RE1.wav"


def test_record_with_silence_detection() -> None:
    text = mapping.record(UUID, ROOT / "recordings/CA1/RE1.wav", root=ROOT, max_length=3600,
                          silence_timeout=5, event_uuid=APP)
    assert text == (
        f"sendmsg {UUID}\n"
        "call-command: execute\n"
        "execute-app-name: record\n"
        f"execute-app-arg: {PATH} 3600 200 5\n"
        f"Event-UUID: {APP}\n"
        "event-lock: true"
    )


def test_record_without_silence_detection() -> None:
    text = mapping.record(UUID, ROOT / "r.wav", root=ROOT, max_length=10, silence_timeout=0,
                          event_uuid=APP)
    assert f"execute-app-arg: {ROOT}/r.wav 10\n" in text


def test_other_operations() -> None:
    assert "execute-app-name: answer\n" in mapping.answer(UUID, event_uuid=APP)
    assert "execute-app-arg" not in mapping.answer(UUID, event_uuid=APP)
    assert f"execute-app-arg: {ROOT}/prompts/say/a.wav\n" in mapping.playback(
        UUID, ROOT / "prompts/say/a.wav", root=ROOT, event_uuid=APP)
    assert "execute-app-name: send_dtmf\nexecute-app-arg: 12w#\n" in mapping.send_dtmf(
        UUID, "12w#", event_uuid=APP)
    assert "execute-app-name: sleep\nexecute-app-arg: 3000\n" in mapping.sleep(
        UUID, 3, event_uuid=APP)
    assert "execute-app-arg: playback_terminators=none\n" in mapping.set_playback_terminators(
        UUID, "", event_uuid=APP)
    assert "execute-app-name: playback\nexecute-app-arg: silence_stream://5000\n" in (
        mapping.silence(UUID, 5, event_uuid=APP))
    assert "execute-app-arg: playback_terminators=0123456789*#\n" in (
        mapping.set_playback_terminators(UUID, mapping.GATHER_KEYS, event_uuid=APP))
    assert mapping.hangup(UUID) == (
        f"sendmsg {UUID}\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING"
    )


def test_session_setup_is_narrow() -> None:
    assert mapping.SESSION_SETUP == (
        "myevents plain", "linger", "event plain RECORD_START RECORD_STOP",
    )
    assert not any("ALL" in command for command in mapping.SESSION_SETUP)


@pytest.mark.parametrize(("finish_on_key", "value"), [
    ("", "none"),  # unset would mean '*' (lab notes §7.3); 'any' would add A-D
    ("#", "#"),
    ("1234567890*#", "1234567890*#"),
    ("##**", "#*"),
])
def test_terminators(finish_on_key: str, value: str) -> None:
    assert esl_terminators(finish_on_key) == value


@pytest.mark.parametrize("value", ["a", "#\n", "# 1", "any", "${x}"])
def test_terminators_refused(value: str) -> None:
    with pytest.raises(UnsafeValue):
        esl_terminators(value)


@pytest.mark.parametrize("path", [
    "recordings/r.wav",  # relative: FreeSWITCH resolves it against sound_prefix (§8.1)
    "/var/spool/freeswitch/twiml/../../../etc/passwd.wav",
    "/var/spool/other/r.wav",
    "/var/spool/freeswitch/twiml/a b.wav",  # a second argument
    "/var/spool/freeswitch/twiml/${sound_prefix}.wav",  # variable expansion
    "/var/spool/freeswitch/twiml/{RECORD_STEREO=true}r.wav",
    "/var/spool/freeswitch/twiml/r.wav\nexecute-app-name: hangup",
    "/var/spool/freeswitch/twiml",
])
def test_paths_refused(path: str) -> None:
    with pytest.raises(UnsafeValue):
        esl_path(PurePosixPath(path), root=ROOT)


def test_tone_stream_refused() -> None:
    with pytest.raises(UnsafeValue):
        mapping.playback(UUID, PurePosixPath("tone_stream://%(250,0,1000)"), root=ROOT,
                         event_uuid=APP)


@pytest.mark.parametrize("value", ["", "1;2", "12 3", "x", "1\n"])
def test_dtmf_refused(value: str) -> None:
    with pytest.raises(UnsafeValue):
        esl_dtmf(value)


@pytest.mark.parametrize("value", [f"{UUID}\n", f"{UUID} all", "not-a-uuid", UUID[:-1]])
def test_uuid_refused(value: str) -> None:
    with pytest.raises(UnsafeValue):
        esl_uuid(value)


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "nul\x00", "x" * 1025])
def test_header_value_refused(value: str) -> None:
    with pytest.raises(UnsafeValue):
        esl_header_value(value, field="execute-app-arg")


def test_invalid_pause_and_max_length() -> None:
    with pytest.raises(UnsafeValue):
        mapping.sleep(UUID, -1, event_uuid=APP)
    for seconds in (0, -1, True, 10**9):
        with pytest.raises(UnsafeValue):
            mapping.silence(UUID, seconds, event_uuid=APP)
    with pytest.raises(UnsafeValue):
        mapping.record(UUID, ROOT / "r.wav", root=ROOT, max_length=0, silence_timeout=0,
                       event_uuid=APP)


# --- how a record ended ---------------------------------------------------------------------


def fs_event(channel: FakeChannel, name: str, at_us: int, extra: list[tuple[str, str]]) -> EslEvent:
    """Serialise like FreeSWITCH, then parse like the driver."""
    frame = EslParser().feed(channel.event(name, timestamp_us=at_us, sequence=1, extra=extra))[0]
    return frame.event()


def recording(**stale: str) -> FakeChannel:
    channel = FakeChannel(uuid=UUID, destination="+1555", caller_number="+1444",
                          created_us=1_795_312_697_000_000)
    channel.answer_state, channel.call_state = "answered", "ACTIVE"
    for name, value in stale.items():
        channel.set_var(name, value)
    return channel


T0 = 1_795_312_700_000_000


def start_stop(channel: FakeChannel, seconds: float, **fresh: str) -> tuple[EslEvent, EslEvent]:
    path = [("Record-File-Path", PATH)]
    start = fs_event(channel, "RECORD_START", T0, path)
    channel.set_var("silence_hits_exhausted", "false")
    for name, value in fresh.items():
        channel.set_var(name, value)
    stop = fs_event(channel, "RECORD_STOP", T0 + int(seconds * 1e6), path)
    return start, stop


def completion(channel: FakeChannel) -> EslEvent:
    return fs_event(channel, "CHANNEL_EXECUTE_COMPLETE", T0 + 9_000_000, [
        ("Application", "record"), ("Application-Response", "_none_"),
        ("Application-UUID", APP),
    ])


def test_ended_by_key() -> None:
    channel = recording()
    start, stop = start_stop(channel, 2.02, playback_terminator_used="#", record_ms="2020")
    result = replies.record_result(start=start, stop=stop, completion=completion(channel),
                                   max_length=20)
    assert (result.end, result.digit) == (RecordEnd.FINISH_KEY, "#")
    assert "record_ms=2020" in result.detail and "elapsed=2.02s" in result.detail


def test_ended_by_silence() -> None:
    channel = recording()
    start, stop = start_stop(channel, 2.03, silence_hits_exhausted="true", record_ms="0")
    result = replies.record_result(start=start, stop=stop, completion=completion(channel),
                                   max_length=20)
    assert result.end is RecordEnd.SILENCE and result.digit is None


def test_ended_by_the_limit_despite_stale_causes() -> None:
    """A previous uuid_record left ``record_completion_cause: success-silence`` (and its
    record_ms) on the channel: the limit is still the limit (lab notes §8.2-8.3)."""
    channel = recording(record_completion_cause="success-silence", record_ms="4500",
                        playback_terminator_used="")
    start, stop = start_stop(channel, 3.7, record_ms="3700")
    assert start.variable("record_ms") == "4500"  # stale on RECORD_START
    result = replies.record_result(start=start, stop=stop, completion=completion(channel),
                                   max_length=3)
    assert result.end is RecordEnd.MAX_LENGTH and "record_ms=3700" in result.detail


def test_ended_by_hangup() -> None:
    channel = recording()
    start = fs_event(channel, "RECORD_START", T0, [("Record-File-Path", PATH)])
    channel.answer_state, channel.hangup_cause, channel.state = "hangup", "NORMAL_CLEARING", \
        "CS_HANGUP"
    stop = fs_event(channel, "RECORD_STOP", T0 + 520_000, [("Record-File-Path", PATH)])
    result = replies.record_result(start=start, stop=stop, completion=completion(channel),
                                   max_length=20)
    assert result.end is RecordEnd.HANGUP
    # ... and when the socket closed before the completion arrived:
    assert replies.record_result(start=start, stop=stop, completion=None,
                                 max_length=20).end is RecordEnd.HANGUP


def test_key_then_hangup_is_the_key() -> None:
    channel = recording()
    start, stop = start_stop(channel, 1.0, playback_terminator_used="1")
    channel.answer_state = "hangup"
    result = replies.record_result(start=start, stop=stop, completion=None, max_length=20)
    assert (result.end, result.digit) == (RecordEnd.FINISH_KEY, "1")


def test_file_could_not_be_opened() -> None:
    """No RECORD_START/STOP, only the completion (with stale record_ms): FreeSWITCH hung up."""
    channel = recording(record_ms="4500")
    channel.hangup_cause = "DESTINATION_OUT_OF_ORDER"
    result = replies.record_result(start=None, stop=None, completion=completion(channel),
                                   max_length=20)
    assert result.end is RecordEnd.ERROR and "DESTINATION_OUT_OF_ORDER" in result.detail


def test_gone_before_recording() -> None:
    result = replies.record_result(start=None, stop=None, completion=None, max_length=20)
    assert result.end is RecordEnd.HANGUP


def test_playback_failure() -> None:
    channel = recording()
    played = fs_event(channel, "CHANNEL_EXECUTE_COMPLETE", T0, [
        ("Application", "playback"), ("Application-Response", "FILE PLAYED")])
    missing = fs_event(channel, "CHANNEL_EXECUTE_COMPLETE", T0, [
        ("Application", "playback"), ("Application-Response", "FILE NOT FOUND")])
    assert replies.playback_failure(played) is None
    assert replies.playback_failure(missing) == "FILE NOT FOUND"


def test_key_that_ended_a_playback() -> None:
    channel = recording()
    played = fs_event(channel, "CHANNEL_EXECUTE_COMPLETE", T0, [
        ("Application", "playback"), ("Application-Response", "FILE PLAYED")])
    channel.set_var("playback_terminator_used", "7")
    cut = fs_event(channel, "CHANNEL_EXECUTE_COMPLETE", T0, [
        ("Application", "playback"), ("Application-Response", "FILE PLAYED")])
    assert replies.key_pressed(played) is None
    assert replies.key_pressed(cut) == "7"


def test_dial_endpoints_and_caller_ids_are_whitelisted() -> None:
    assert esl_dial_endpoint("sofia/gateway/trunk/+15551234567") == (
        "sofia/gateway/trunk/+15551234567")
    assert esl_dial_endpoint("sofia/external/sip:a_b@example.com:5080;transport=tcp")
    for bad in ("sofia/gw/1,sofia/gw/2", "sofia/gw/1|sofia/gw/2", "sofia/gw/1:_:sofia/gw/2",
                "{x=y}sofia/gw/1", "[x=y]sofia/gw/1", "sofia/gw/${x}", "sofia/gw/1 2",
                "sofia/gw/'1'", "loopback-no-slash", "sofia/gw/1\nsendmsg"):
        with pytest.raises(UnsafeValue):
            esl_dial_endpoint(bad)
    assert esl_caller_id("+15550009999") == "+15550009999"
    for bad in ("Bob Smith", "a,b", "x}y", "", "1" * 65):
        with pytest.raises(UnsafeValue):
            esl_caller_id(bad)


def test_header_value_limit_is_per_field() -> None:
    long = "x" * 2000
    with pytest.raises(UnsafeValue):
        esl_header_value(long, field="f")
    assert esl_header_value(long, field="f", limit=4096) == long


def test_api_commands_for_a_call() -> None:
    assert mapping.uuid_break(UUID) == f"uuid_break {UUID}"  # never "all": it flushes sendmsg
    assert mapping.uuid_exists(UUID) == f"uuid_exists {UUID}"
    with pytest.raises(UnsafeValue):
        mapping.uuid_break("not-a-uuid all")
