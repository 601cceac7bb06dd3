"""Property tests: no value reaching an Asterisk command builder can add an AMI header line, an
AGI argument, a dialplan application argument (``,``/``|``/``&``) or leave the spool.

Every builder either raises UnsafeValue or returns a command whose shape is exactly the one it
documents, checked by tokenising it the way Asterisk does (res_agi.c ``parse_args``: spaces and
tabs split, double quotes group, a backslash escapes the next character).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from panoramisk.actions import Action

from adapter.pbx.asterisk import mapping
from adapter.pbx.asterisk.agi import parse_agi_reply
from adapter.pbx.asterisk.escape import (
    MAX_AMI_LINE_BYTES,
    UnsafeValue,
    agi_path,
    ami_header_value,
    dial_string,
)
from adapter.pbx.base import UtteranceRequest

ROOT = PurePosixPath("/var/spool/asterisk/twiml")
SEPARATORS = ",|&"

# Text an attacker would try, mixed with arbitrary Unicode (lone surrogates included: they are
# what surrogateescape makes of undecodable bytes).
HOSTILE_PIECES = st.sampled_from([
    "\r\n", "\n", "\r", "\x00", " ", "\t", '"', "'", "\\", ",", "|", "&", "(", ")", "$", "{", "}",
    "${SHELL(id)}", "..", "/", "./", "Action: Originate", "\r\nAction: Originate\r\n\r\n",
    "é", "山", "\u2028", "\udc80", ";", "=", "@", "+", "*", "#", "w", "1", "abc",
])
HOSTILE = st.lists(
    HOSTILE_PIECES | st.text(st.characters(exclude_categories=()), max_size=8), max_size=12
).map("".join)


def agi_args(command: str) -> list[str]:
    """The arguments Asterisk's AGI parser makes of `command`."""
    args: list[str] = []
    current: list[str] = []
    started = quoted = escaped = False
    for ch in command:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = started = True
        elif ch == '"':
            quoted = not quoted
            started = True
        elif ch in " \t" and not quoted:
            if started:
                args.append("".join(current))
                current, started = [], False
        else:
            current.append(ch)
            started = True
    if started:
        args.append("".join(current))
    return args


def assert_one_clean_line(text: str) -> None:
    assert not any(ch in text for ch in "\r\n\x00")


def assert_inside_root(path_text: str) -> None:
    path = PurePosixPath(path_text)
    assert path.is_absolute() and ".." not in path.parts and path.is_relative_to(ROOT)
    assert re.fullmatch(r"[A-Za-z0-9_./-]+", path_text)


def spool_paths() -> st.SearchStrategy[PurePosixPath]:
    inside = HOSTILE.map(lambda t: PurePosixPath(f"{ROOT}/{t}"))
    anywhere = HOSTILE.map(PurePosixPath)
    return inside | anywhere | st.just(ROOT / "recordings/CA1/RE1.wav")


# --- escape.py ---------------------------------------------------------------------------------


@settings(max_examples=500)
@given(value=HOSTILE, field=st.sampled_from(["Command", "Channel", "Options", "MixMonitorID"]))
@example(value="é" * 600, field="Command")  # 600 characters, 1 200 bytes
@example(value="\udc80", field="Command")
def test_ami_header_value_is_one_line_asterisk_can_read(value: str, field: str) -> None:
    try:
        checked = ami_header_value(value, field=field)
    except UnsafeValue:
        return
    line = f"{field}: {checked}"
    assert_one_clean_line(line)
    assert len(line.encode("utf-8")) <= MAX_AMI_LINE_BYTES


@settings(max_examples=300)
@given(path=spool_paths())
def test_agi_path_is_one_argument_inside_the_root(path: PurePosixPath) -> None:
    try:
        text = agi_path(path, root=ROOT)
    except UnsafeValue:
        return
    assert agi_args(text) == [text]
    assert_inside_root(text)


# --- AGI builders --------------------------------------------------------------------------------


@settings(max_examples=300)
@given(path=spool_paths())
def test_stream_file_has_exactly_its_four_arguments(path: PurePosixPath) -> None:
    try:
        command = mapping.stream_file(path, root=ROOT)
    except UnsafeValue:
        return
    assert_one_clean_line(command)
    verb, file_, target, digits = agi_args(command)
    assert (verb, file_, digits) == ("STREAM", "FILE", "")
    assert_inside_root(target)
    assert not any(ch in target for ch in SEPARATORS)


@settings(max_examples=300)
@given(path=spool_paths())
def test_stream_file_until_key_has_the_gather_keys_as_escape_digits(path: PurePosixPath) -> None:
    try:
        command = mapping.stream_file_until_key(path, root=ROOT)
    except UnsafeValue:
        return
    assert_one_clean_line(command)
    verb, file_, target, digits = agi_args(command)
    assert (verb, file_, digits) == ("STREAM", "FILE", "0123456789*#")
    assert_inside_root(target)


@given(seconds=st.integers(-(2**70), 2**70) | st.booleans())
def test_wait_for_digit_is_milliseconds_only(seconds: int) -> None:
    try:
        command = mapping.wait_for_digit(seconds)
    except UnsafeValue:
        return
    assert agi_args(command) == ["WAIT", "FOR", "DIGIT", f"{int(seconds)}000"]
    assert not isinstance(seconds, bool) and seconds >= 1


@pytest.mark.parametrize(("reply", "key"), [
    ("200 result=53 endpos=1234", "5"), ("200 result=35", "#"), ("200 result=42", "*"),
    ("200 result=0 endpos=8000", None), ("200 result=0", None), ("200 result=-1", None),
    ("200 result=65", None), ("510 Invalid or unknown command", None),
])
def test_key_pressed_from_stream_file_and_wait_for_digit(reply: str, key: str | None) -> None:
    assert mapping.key_pressed(parse_agi_reply(reply)) == key


@settings(max_examples=300)
@given(
    path=spool_paths(),
    finish_on_key=HOSTILE | st.text("0123456789*#", max_size=12),
    max_length=st.integers(-5, 20_000),
    silence=st.integers(-5, 4000),
    beep=st.booleans(),
)
def test_record_file_has_exactly_its_arguments(
    path: PurePosixPath, finish_on_key: str, max_length: int, silence: int, beep: bool
) -> None:
    try:
        command = mapping.record_file(path, root=ROOT, finish_on_key=finish_on_key,
                                      max_length=max_length, silence_timeout=silence, beep=beep)
    except UnsafeValue:
        return
    assert_one_clean_line(command)
    args = agi_args(command)
    assert len(args) == 6 + beep + (silence != 0)
    assert args[:2] == ["RECORD", "FILE"] and args[3] == "wav"
    assert_inside_root(args[2])
    assert args[4] == finish_on_key and re.fullmatch(r"[0-9*#]*", args[4])
    assert args[5] == f"{max_length}000"
    assert args[6:] == (["BEEP"] if beep else []) + ([f"s={silence}"] if silence else [])


@settings(max_examples=300)
@given(digits=HOSTILE | st.text("0123456789*#ABCDwW", min_size=1))
def test_send_dtmf_is_one_application_argument(digits: str) -> None:
    try:
        command = mapping.send_dtmf(digits)
    except UnsafeValue:
        return
    assert agi_args(command) == ["EXEC", "SendDTMF", digits]
    assert not any(ch in digits for ch in SEPARATORS)


@given(seconds=st.integers(-(2**70), 2**70) | st.booleans())
def test_wait_is_digits_only(seconds: int) -> None:
    try:
        command = mapping.wait(seconds)
    except UnsafeValue:
        return
    assert agi_args(command) == ["EXEC", "Wait", str(int(seconds))]
    assert not isinstance(seconds, bool)


class _Sneaky(int):
    def __str__(self) -> str:
        return "1,Playback(evil)"


def test_int_subclass_cannot_change_its_digits() -> None:
    assert mapping.wait(_Sneaky(5)) == "EXEC Wait 5"


# --- Dial --------------------------------------------------------------------------------------

TEMPLATES = {"number_template": "PJSIP/{number}@trunk", "sip_template": "PJSIP/trunk/{uri}"}


@settings(max_examples=400)
@given(kind=st.sampled_from(["number", "sip", "fax"]), address=HOSTILE | st.from_regex(
    r"sips?:[a-z0-9.]{1,10}@[a-z0-9.]{1,20}(;[a-z]{1,5}=[a-z0-9]{1,5})?", fullmatch=True))
def test_dial_target_is_one_dial_string(kind: str, address: str) -> None:
    try:
        target = mapping.dial_target(kind, address, **TEMPLATES)
    except UnsafeValue:
        return
    assert dial_string(target) == target
    assert not any(ch in target for ch in SEPARATORS + " \t\"'()$")


@settings(max_examples=400)
@given(
    targets=st.lists(HOSTILE | st.sampled_from(["PJSIP/+1555@trunk", "PJSIP/trunk/sip:a@b"]),
                     min_size=1, max_size=12),
    timeout=st.integers(-1, 700),
    time_limit=st.integers(-1, 90_000),
    caller_id=st.none() | HOSTILE | st.just("+15551230000"),
)
@example(targets=["P/1,,G(evil)"], timeout=30, time_limit=60, caller_id=None)
@example(targets=["PJSIP/trunk/sip:" + "a" * 60 + "@" + "b" * 180] * 10, timeout=30,
         time_limit=60, caller_id=None)
def test_dial_has_its_own_separators_only(
    targets: list[str], timeout: int, time_limit: int, caller_id: str | None
) -> None:
    try:
        command = mapping.dial(targets, timeout=timeout, time_limit=time_limit,
                               caller_id=caller_id)
    except UnsafeValue:
        return
    assert_one_clean_line(command)
    assert len(f"Command: {command}".encode()) <= MAX_AMI_LINE_BYTES
    verb, app, data = agi_args(command)
    assert (verb, app) == ("EXEC", "Dial")
    assert data.count("&") == len(targets) - 1 and data.count(",") == 2 and "|" not in data
    dial_targets, seconds, options = data.split(",")
    assert dial_targets.split("&") == targets
    assert seconds == str(timeout)
    expected = (f"o({caller_id})" if caller_id is not None else "") + f"S({time_limit})"
    assert options == expected


# --- AMI actions ---------------------------------------------------------------------------------


def ami_lines(action: dict[str, str]) -> list[str]:
    """The lines panoramisk writes for `action` (after our header check), ActionID included."""
    checked = {k: ami_header_value(v, field=k) for k, v in action.items()}
    checked["ActionID"] = "twiml-1-act-1"
    # panoramisk's own serialiser, without building an Action (that needs an event loop).
    return [line for line in Action.__str__(checked).split("\r\n") if line]


CHANNELS = HOSTILE | st.sampled_from(["PJSIP/trunk-00000001", "Local/100@twiml-0001;1"])


@settings(max_examples=300)
@given(channel=CHANNELS, id_variable=HOSTILE | st.just("TWIML_MM_RE1"),
       inbound=st.none() | spool_paths(), outbound=st.none() | spool_paths())
def test_mixmonitor_is_three_headers_with_paths_in_the_spool(
    channel: str, id_variable: str, inbound: PurePosixPath | None,
    outbound: PurePosixPath | None,
) -> None:
    assume(inbound is not None or outbound is not None)
    try:
        action = mapping.mixmonitor(channel, id_variable=id_variable, inbound=inbound,
                                    outbound=outbound, root=ROOT)
    except UnsafeValue:
        return
    assert set(action) == {"Action", "Channel", "Options"}
    assert len(ami_lines(action)) == 4  # and the ActionID panoramisk adds
    match = re.fullmatch(r"i\((TWIML_MM_[A-Za-z0-9]+)\)(?:r\(([^()]+)\))?(?:t\(([^()]+)\))?",
                         action["Options"])
    assert match is not None
    for path in match.groups()[1:]:
        if path is not None:
            assert_inside_root(path)
    assert not any(ch in action["Options"] for ch in SEPARATORS)


@settings(max_examples=300)
@given(channel=CHANNELS, mixmonitor_id=HOSTILE | st.just("0x7f3a2c001234"), muted=st.booleans())
def test_stop_and_mute_mixmonitor_have_fixed_headers(
    channel: str, mixmonitor_id: str, muted: bool
) -> None:
    for build, keys in (
        (lambda: mapping.stop_mixmonitor(channel, mixmonitor_id),
         {"Action", "Channel", "MixMonitorID"}),
        (lambda: mapping.mute_mixmonitor(channel, mixmonitor_id, muted),
         {"Action", "Channel", "Direction", "State", "MixMonitorID"}),
    ):
        try:
            action = build()
        except UnsafeValue:
            continue
        assert set(action) == keys
        assert len(ami_lines(action)) == len(keys) + 1


def test_command_line_limit_is_asterisks() -> None:
    """Asterisk 22 (lab experiment, docs/security.md): a 1 022-byte line is read; a 1 023-byte
    line splits the action in two, and a longer one is refused with an Error whose ActionID can
    come from the rest of the line (so the real action never gets its Response)."""
    assert ami_header_value("a" * 1013, field="Command")  # "Command: " + 1013 = 1022 bytes
    for value in ("a" * 1014, "é" * 507):
        with pytest.raises(UnsafeValue):
            ami_header_value(value, field="Command")


@pytest.mark.parametrize(("keys", "escape"), [("", '""'), ("#*0123456789", '"#*0123456789"')])
def test_an_utterance_is_a_record_file_without_beep_ended_by_silence(keys: str,
                                                                     escape: str) -> None:
    """`<Gather input="speech">` (`CallControl.record_utterance`): the same RECORD FILE as a
    `<Record>`, no BEEP, ``s=`` the speech silence, escape digits only for ``dtmf speech``."""
    request = UtteranceRequest(Path("/spool/recordings/CA1/utterance-1.wav"), silence=1,
                               max_length=60, keys=keys).as_record()
    command = mapping.record_file(ROOT / "recordings/CA1/utterance-1.wav", root=ROOT,
                                  finish_on_key=request.finish_on_key,
                                  max_length=request.max_length,
                                  silence_timeout=request.silence_timeout, beep=request.beep)
    assert command == (f"RECORD FILE {ROOT}/recordings/CA1/utterance-1 wav {escape} 60000 s=1")
