"""AsyncAGI replies, the AGI environment, and the checks that keep values out of AMI/AGI syntax."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from adapter.pbx.asterisk import mapping
from adapter.pbx.asterisk.agi import parse_agi_reply
from adapter.pbx.asterisk.driver import parse_agi_env
from adapter.pbx.asterisk.escape import (
    UnsafeValue,
    agi_digits,
    agi_dtmf,
    agi_path,
    ami_header_value,
)
from adapter.pbx.base import RecordEnd

ROOT = PurePosixPath("/var/spool/asterisk/twiml")


def test_reply_dtmf() -> None:
    reply = parse_agi_reply("200 result=53 (dtmf) endpos=53291\n")
    assert (reply.code, reply.result, reply.data) == (200, 53, "dtmf")
    assert reply.extra == {"endpos": "53291"}
    result = mapping.record_result(reply, max_length=30, elapsed=8.2, silence_timeout=5)
    assert result.end is RecordEnd.FINISH_KEY and result.digit == "5"


def test_reply_hangup_and_writefile() -> None:
    hangup = parse_agi_reply("200 result=-1 (hangup) endpos=54891")
    assert hangup.hung_up
    assert mapping.record_result(hangup, max_length=30, elapsed=3,
                                 silence_timeout=5).end is RecordEnd.HANGUP
    failed = parse_agi_reply("200 result=-1 (writefile)")
    assert not failed.hung_up
    assert mapping.record_result(failed, max_length=30, elapsed=0.5,
                                 silence_timeout=5).end is RecordEnd.ERROR


def test_timeout_told_apart_by_elapsed_time() -> None:
    reply = parse_agi_reply("200 result=21018 (timeout) endpos=59371")
    silence = mapping.record_result(reply, max_length=30, elapsed=9.5, silence_timeout=2)
    assert silence.end is RecordEnd.SILENCE
    assert silence.cut_silence == 1  # RECORD FILE kept 1 s of the 2 s of silence
    longest = mapping.record_result(reply, max_length=4, elapsed=4.53, silence_timeout=2)
    assert longest.end is RecordEnd.MAX_LENGTH and longest.cut_silence == 0


def test_dead_channel_reply() -> None:
    reply = parse_agi_reply("511 Command Not Permitted on a dead channel or intercept routine")
    assert reply.code == 511 and reply.hung_up and reply.result is None


def test_record_file_command() -> None:
    command = mapping.record_file(
        ROOT / "recordings/CA1/RE1.wav", root=ROOT, finish_on_key="1234567890*#",
        max_length=3600, silence_timeout=5, beep=True,
    )
    assert command == (
        'RECORD FILE /var/spool/asterisk/twiml/recordings/CA1/RE1 wav "1234567890*#" 3600000 '
        "BEEP s=5"
    )
    quiet = mapping.record_file(ROOT / "r/x.wav", root=ROOT, finish_on_key="", max_length=10,
                                silence_timeout=0, beep=False)
    assert quiet == 'RECORD FILE /var/spool/asterisk/twiml/r/x wav "" 10000'


def test_agi_env_split_before_decoding() -> None:
    env = parse_agi_env(
        "agi_request%3A%20async%0Aagi_calleridname%3A%20Bob%250Aagi_arg_1%253A%20x%0A"
        "agi_arg_1%3A%20twiml-pbx-adapter%0Aagi_arg_2%3A%20%2B15551230000%0A%0A"
    )
    assert env["agi_calleridname"] == "Bob%0Aagi_arg_1%3A x"
    assert env["agi_arg_1"] == "twiml-pbx-adapter"
    assert env["agi_arg_2"] == "+15551230000"


@pytest.mark.parametrize("value", ["a\r\nAction: Originate", "x\n", "nul\x00"])
def test_header_injection_refused(value: str) -> None:
    with pytest.raises(UnsafeValue):
        ami_header_value(value, field="Command")


@pytest.mark.parametrize(
    "path",
    ["/var/spool/asterisk/twiml/../../etc/passwd", "/var/spool/asterisk/twiml/a b",
     "/var/spool/asterisk/twiml/a,b", "/var/spool/asterisk/twiml/a|b", "/etc/passwd",
     "relative/path", '/var/spool/asterisk/twiml/a"b'],
)
def test_paths_refused(path: str) -> None:
    with pytest.raises(UnsafeValue):
        agi_path(PurePosixPath(path), root=ROOT)


@pytest.mark.parametrize("digits", ['1" BEEP', "1 2", "a", "1,2", "#\n"])
def test_digits_refused(digits: str) -> None:
    with pytest.raises(UnsafeValue):
        agi_digits(digits)


def test_dtmf_allows_twilio_wait_character_only() -> None:
    assert agi_dtmf("1w2Ww#") == "1w2Ww#"
    with pytest.raises(UnsafeValue):
        agi_dtmf("1,Playback(x)")


def test_dial_command_and_targets() -> None:
    number = mapping.dial_target("number", "+15551230000", number_template="PJSIP/{number}@trunk",
                                 sip_template="PJSIP/trunk/{uri}")
    sip = mapping.dial_target("sip", "sip:alice@pbx.example.com;transport=tcp",
                              number_template="x{number}", sip_template="PJSIP/trunk/{uri}")
    assert number == "PJSIP/+15551230000@trunk"
    assert sip == "PJSIP/trunk/sip:alice@pbx.example.com;transport=tcp"
    assert mapping.dial([number, sip], timeout=30, time_limit=14400, caller_id="+1555") == (
        "EXEC Dial PJSIP/+15551230000@trunk&PJSIP/trunk/sip:alice@pbx.example.com;transport=tcp,"
        "30,o(+1555)S(14400)"
    )


@pytest.mark.parametrize(
    ("kind", "address"),
    [("number", "100&Local/evil@x"), ("number", "1,2"), ("sip", "sip:a@b,,g(x)"),
     ("sip", "sip:a@b c"), ("sip", "sip:a@b&Local/x"), ("sip", "alice@b"), ("fax", "100")],
)
def test_dial_targets_cannot_inject(kind: str, address: str) -> None:
    with pytest.raises(UnsafeValue):
        mapping.dial_target(kind, address, number_template="P/{number}", sip_template="P/{uri}")


def test_dial_caller_id_cannot_inject() -> None:
    with pytest.raises(UnsafeValue):
        mapping.dial(["P/1"], timeout=30, time_limit=60, caller_id="1)G(evil")


def test_mixmonitor_action() -> None:
    action = mapping.mixmonitor(
        "PJSIP/trunk-00000001", id_variable="TWIML_MM_RE1", root=ROOT,
        inbound=ROOT / "recordings/CA1/RE1-inbound.wav", outbound=None,
    )
    assert action == {
        "Action": "MixMonitor", "Channel": "PJSIP/trunk-00000001",
        "Options": "i(TWIML_MM_RE1)r(/var/spool/asterisk/twiml/recordings/CA1/RE1-inbound.wav)",
    }
    with pytest.raises(UnsafeValue):
        mapping.stop_mixmonitor("PJSIP/trunk-00000001", "0x1\r\nAction: Originate")
