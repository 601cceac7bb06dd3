"""The ESL parser (`adapter.pbx.freeswitch.protocol`): framing across every split of the byte
stream, per-line URL decoding, and the header-spoofing regression against greenswitch."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from esl_server.channel import FakeChannel
from esl_server.codec import (
    STATUS_BODY,
    TRANSCRIPT_ANSWER_COMPLETE,
    TRANSCRIPT_CONNECT_REPLY,
    api_response,
    command_reply,
    disconnect_notice,
    event_frame,
)
from greenswitch.esl import ESLEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.pbx.freeswitch.protocol import (
    EslFrame,
    EslParser,
    EslProtocolError,
    parse_event_plain,
    parse_header_block,
)

UUID = "b20481ed-3a19-4708-912f-fc4d3beb6c21"
SPOOFED_NAME = "Bob\nUnique-ID: spoofed"  # FreeSWITCH sends it as Bob%0AUnique-ID%3A%20spoofed


def channel(**overrides: str) -> FakeChannel:
    values = {"uuid": UUID, "destination": "+15557650000", "caller_number": "+15551230001",
              "caller_name": "Alice"} | overrides
    return FakeChannel(created_us=1795312697415271, **values)  # type: ignore[arg-type]


def stream() -> tuple[bytes, list[tuple[str, str]]]:
    """A session's worth of frames of every kind, and (Content-Type, a check value) for each."""
    spoof = channel(caller_name="Zoë Ångström")
    frames = [
        (b"Content-Type: auth/request\n\n", ("auth/request", "")),
        (command_reply("+OK accepted"), ("command/reply", "+OK accepted")),
        (api_response(STATUS_BODY), ("api/response", STATUS_BODY)),
        (TRANSCRIPT_CONNECT_REPLY, ("command/reply", "+OK\n")),
        (spoof.connect_reply(timestamp_us=1, sequence=2), ("command/reply", "+OK\n")),
        (TRANSCRIPT_ANSWER_COMPLETE, ("text/event-plain", "CHANNEL_EXECUTE_COMPLETE")),
        (api_response("2540"), ("api/response", "2540")),
        (api_response("Zoë ünïcode ✓\n"), ("api/response", "Zoë ünïcode ✓\n")),
        (disconnect_notice(UUID, "loopback/sock-b", linger=True),
         ("text/disconnect-notice", "linger")),
    ]
    return b"".join(f for f, _ in frames), [check for _, check in frames]


def check_frames(frames: list[EslFrame], expected: list[tuple[str, str]]) -> None:
    assert [f.content_type for f in frames] == [kind for kind, _ in expected]
    for frame, (kind, value) in zip(frames, expected, strict=True):
        if kind == "command/reply":
            assert frame.reply_text == value
        elif kind == "api/response":
            assert frame.text() == value
        elif kind == "text/event-plain":
            assert frame.event().name == value
        elif kind == "text/disconnect-notice":
            assert frame.headers["Content-Disposition"] == value


def test_whole_stream_at_once() -> None:
    data, expected = stream()
    parser = EslParser()
    check_frames(parser.feed(data), expected)
    assert parser.buffered == 0


def test_every_split_position() -> None:
    data, expected = stream()
    whole = EslParser().feed(data)
    check_frames(whole, expected)
    for cut in range(len(data) + 1):
        parser = EslParser()
        frames = parser.feed(data[:cut]) + parser.feed(data[cut:])
        assert frames == whole, f"split at byte {cut}"
        assert parser.buffered == 0


def test_byte_by_byte() -> None:
    data, expected = stream()
    parser = EslParser()
    frames = [frame for i in range(len(data)) for frame in parser.feed(data[i : i + 1])]
    check_frames(frames, expected)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=30000), max_size=12))
def test_any_chunking(cuts: list[int]) -> None:
    data, _ = stream()
    whole = EslParser().feed(data)
    points = sorted({c % (len(data) + 1) for c in cuts})
    parser = EslParser()
    frames: list[EslFrame] = []
    for start, end in zip([0, *points], [*points, len(data)], strict=True):
        frames += parser.feed(data[start:end])
    assert frames == whole


def test_utf8_split_inside_a_character() -> None:
    """FreeSWITCH sends bytes >= 0x80 unencoded; a read may end in the middle of one."""
    data = channel(caller_name="Zoë").connect_reply(timestamp_us=1, sequence=2)
    middle = data.index("ë".encode()) + 1  # between the two bytes of ë
    parser = EslParser()
    assert parser.feed(data[:middle]) == []
    (frame,) = parser.feed(data[middle:])
    assert frame.headers["Caller-Caller-ID-Name"] == "Zoë"


def test_connect_reply_from_the_transcript() -> None:
    (frame,) = EslParser().feed(TRANSCRIPT_CONNECT_REPLY)
    assert frame.body == b""
    assert frame.content_type == "command/reply"  # it comes after the 100 channel headers
    assert frame.reply_text == "+OK\n"  # Reply-Text: %2BOK%0A
    assert frame.headers["Socket-Mode"] == "async" and frame.headers["Control"] == "full"
    assert frame.headers["Unique-ID"] == UUID
    assert frame.headers["Caller-Destination-Number"] == "sock"
    assert frame.headers["FreeSWITCH-IPv6"] == "fd00::2"
    assert frame.headers["variable_current_application_data"] == "127.0.0.1:8084 async full"
    assert len(frame.headers) == 105


def test_spoofed_caller_id_fools_greenswitch_but_not_us() -> None:
    """The regression for issue 4: greenswitch decodes the whole payload before splitting."""
    data = channel(caller_name=SPOOFED_NAME).connect_reply(timestamp_us=1, sequence=2)
    assert b"Bob%0AUnique-ID%3A%20spoofed" in data  # as FreeSWITCH encodes it

    fooled = ESLEvent(data.decode())
    assert fooled.headers["Unique-ID"] == "spoofed"

    (frame,) = EslParser().feed(data)
    assert frame.headers["Unique-ID"] == UUID
    assert frame.headers["Caller-Caller-ID-Name"] == SPOOFED_NAME


def test_spoofed_variable_in_an_event_body() -> None:
    """The same forgery inside an event: a fake ``playback_terminator_used`` would turn a
    recording that ended on silence into one ended by a key."""
    forged = channel(caller_name="x\nvariable_playback_terminator_used: #")
    forged.set_var("silence_hits_exhausted", "true")
    frame = forged.event("RECORD_STOP", timestamp_us=1, sequence=2,
                         extra=[("Record-File-Path", "/spool/r.wav")])
    body = EslParser().feed(frame)[0].body

    fooled = ESLEvent("")
    fooled.parse_data(body.decode())
    assert fooled.headers["variable_playback_terminator_used"] == "#"

    event = parse_event_plain(body)
    assert event.variable("playback_terminator_used") is None
    assert event.variable("silence_hits_exhausted") == "true"


def test_first_occurrence_wins_like_switch_event_get_header() -> None:
    headers = parse_header_block(b"Hangup-Cause: NORMAL_CLEARING\nX: 1\nHangup-Cause: OTHER\n")
    assert headers["Hangup-Cause"] == "NORMAL_CLEARING"


def test_values_are_decoded_once_and_plus_is_not_space() -> None:
    headers = parse_header_block(
        b"A: %2BOK%0A\nB: 50%25%2520\nC: +15551230001\nD: 100%\nE: a%3Ab: c\nF:\n"
    )
    assert headers == {"A": "+OK\n", "B": "50%%20", "C": "+15551230001", "D": "100%",
                       "E": "a:b: c", "F": ""}


def test_event_with_its_own_body() -> None:
    """BACKGROUND_JOB-style events carry a second Content-Length inside the event body."""
    inner = b"Event-Name: BACKGROUND_JOB\nJob-UUID: 1\nContent-Length: 4\n\n+OK\n"
    (frame,) = EslParser().feed(
        b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(inner) + inner
    )
    event = frame.event()
    assert event.name == "BACKGROUND_JOB" and event.body == "+OK\n"


def test_event_frame_with_percent_encoded_headers_decodes() -> None:
    frame = EslParser().feed(event_frame([("Event-Name", "DTMF"), ("DTMF-Digit", "#")]))[0]
    assert b"DTMF-Digit: %23" in frame.body
    assert frame.event().get("DTMF-Digit") == "#"


@pytest.mark.parametrize("length", [b"abc", b"-1", b"1e3", b"\xd9\xa3"])
def test_bad_content_length(length: bytes) -> None:
    with pytest.raises(EslProtocolError):
        EslParser().feed(b"Content-Type: api/response\nContent-Length: " + length + b"\n\n")


def test_size_limits() -> None:
    parser = EslParser(max_header_bytes=64)
    with pytest.raises(EslProtocolError):
        parser.feed(b"X: " + b"a" * 100)  # no end of block yet, already too long
    with pytest.raises(EslProtocolError):
        EslParser(max_body_bytes=10).feed(b"Content-Length: 11\n\n")


def test_stray_blank_lines_between_frames_are_skipped() -> None:
    frames = EslParser().feed(b"\n" + command_reply("+OK") + b"\n\n" + command_reply("-ERR x"))
    assert [f.reply_text for f in frames] == ["+OK", "-ERR x"]


def test_a_lookup_reads_the_line_of_that_exact_name() -> None:
    """Headers are looked up in the block's text (`EslHeaders`): only a whole name at the
    start of a line matches, never a longer name, a name inside a value, or a decoded one."""
    headers = parse_header_block(
        b"Event-Name-Extra: no\nX: Event-Name: no\nY: %0AUnique-ID: spoofed\n"
        b"Event-Name: RECORD_STOP\nUnique-ID: u1"
    )
    assert headers["Event-Name"] == "RECORD_STOP"
    assert headers.get("Unique-ID") == "u1"  # the last line, without a newline after it
    assert headers["Y"] == "\nUnique-ID: spoofed"
    assert "Event" not in headers and headers.get("Event-Name:") is None
    with pytest.raises(KeyError):
        headers["Name"]


_NAMES = st.sampled_from(["A", "B", "Event-Name", "Event-Name-2", "variable_x", ""])
_LINES = st.lists(st.one_of(
    st.tuples(_NAMES, st.text(alphabet="ab :%0A\r", max_size=8)).map(lambda nv: f"{nv[0]}:{nv[1]}"),
    st.text(alphabet="ab :\r", max_size=6),  # lines with or without a ":"
), max_size=8)


@settings(max_examples=300, deadline=None)
@given(_LINES)
def test_lookups_agree_with_the_lines_split_one_by_one(lines: list[str]) -> None:
    """What each lookup finds in the text is what splitting every line gives: the value of
    the first line whose text before its first ":" is the name."""
    headers = parse_header_block("\n".join(lines).encode())
    expected: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep and name and "\n" not in name:
            expected.setdefault(name, value)
    assert set(headers) == set(expected)
    for name, value in expected.items():
        assert name in headers
        raw = value[1:] if value.startswith(" ") else value
        assert headers[name] == unquote(raw.rstrip("\r"), encoding="utf-8", errors="replace")
