"""Validation: Twilio's codes for bad attribute values and nesting, which findings are fatal,
the defaults that replace rejected values, and how findings print."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

import pytest
from twilio.twiml.voice_response import VoiceResponse

from adapter.errors import TwilioError
from adapter.twiml import (
    Document,
    Finding,
    Hangup,
    Pause,
    Play,
    Record,
    Redirect,
    Reject,
    Say,
    TwimlError,
    check_document,
    parse_document,
)

XML = "text/xml"


def doc(inner: str) -> bytes:
    return f"<Response>{inner}</Response>".encode()


def parse(inner: str) -> Document:
    return parse_document(doc(inner), XML)


def record_with(attribute: str, value: str) -> tuple[Record, tuple[Finding, ...]]:
    document = parse(f"<Record {attribute}={quoteattr(value)}/>")
    (record,) = document.verbs
    assert isinstance(record, Record)
    return record, document.findings


# --- <Record> attributes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attribute", "value", "code", "field", "fallback"),
    [
        ("method", "PUT", 13610, "method", "POST"),
        ("method", "", 13610, "method", "POST"),
        ("timeout", "-1", 13611, "timeout", 5),
        ("timeout", "5.0", 13611, "timeout", 5),
        ("timeout", "abc", 13611, "timeout", 5),
        ("timeout", "", 13611, "timeout", 5),
        ("timeout", "1e3", 13611, "timeout", 5),
        ("timeout", "9999999999", 13611, "timeout", 5),
        ("timeout", "\u0665", 13611, "timeout", 5),  # ARABIC-INDIC DIGIT FIVE
        ("maxLength", "0", 13612, "max_length", 3600),
        ("maxLength", "1", 13612, "max_length", 3600),
        ("maxLength", "86401", 13612, "max_length", 3600),
        ("maxLength", "ten", 13612, "max_length", 3600),
        ("finishOnKey", "#a", 13613, "finish_on_key", "1234567890*#"),
        ("finishOnKey", "1 2", 13613, "finish_on_key", "1234567890*#"),
        ("transcribe", "yes", 13614, "transcribe", False),
        ("playBeep", "1", 13616, "play_beep", True),
        ("playBeep", "no", 13616, "play_beep", True),
        ("trim", "trim", 13699, "trim", "do-not-trim"),
        ("recordingStatusCallback", "ftp://x/cb", 13256, "recording_status_callback", None),
        (
            "recordingStatusCallbackMethod",
            "PATCH",
            12200,
            "recording_status_callback_method",
            "POST",
        ),
    ],
)
def test_invalid_record_attribute_warns_and_uses_default(
    attribute: str, value: str, code: int, field: str, fallback: object
) -> None:
    record, findings = record_with(attribute, value)
    assert getattr(record, field) == fallback
    assert [(f.code, f.fatal, f.verb, f.attribute) for f in findings] == [
        (code, False, "Record", attribute)
    ]


@pytest.mark.parametrize(
    ("attribute", "value", "code"),
    [
        ("recordingStatusCallbackEvent", "done", 13621),
        ("recordingStatusCallbackEvent", "completed,absent", 13621),
        ("recordingStatusCallbackEvent", "", 13621),
        ("action", "file:///etc/passwd", 11100),
        ("action", "javascript:alert(1)", 11100),
        ("action", "http:no-host", 11100),
        ("transcribeCallback", "file:///tmp/x", 13257),
    ],
)
def test_error_level_record_findings_are_fatal(attribute: str, value: str, code: int) -> None:
    body = doc(f"<Say>never said</Say><Record {attribute}={quoteattr(value)}/>")
    with pytest.raises(TwimlError) as caught:
        parse_document(body, XML)
    error = caught.value
    assert isinstance(error, TwilioError)
    assert (error.code, error.findings[0].attribute) == (code, attribute)


@pytest.mark.parametrize(
    ("attribute", "value", "field", "expected"),
    [
        ("timeout", "0", "timeout", 0),
        ("timeout", " 12 ", "timeout", 12),
        ("maxLength", "2", "max_length", 2),
        ("maxLength", "86400", "max_length", 86400),
        ("method", "get", "method", "GET"),
        ("method", "Post", "method", "POST"),
        ("finishOnKey", "", "finish_on_key", ""),
        ("finishOnKey", "##", "finish_on_key", "##"),
        ("playBeep", "FALSE", "play_beep", False),
        ("transcribe", "True", "transcribe", True),
        ("trim", "do-not-trim", "trim", "do-not-trim"),
        (
            "recordingStatusCallbackEvent",
            " absent  in-progress ",
            "recording_status_callback_event",
            frozenset({"absent", "in-progress"}),
        ),
        ("action", "", "action", ""),
        ("action", "../up?x=1&y=%20", "action", "../up?x=1&y=%20"),
        ("action", "HTTPS://Example.com/A", "action", "HTTPS://Example.com/A"),
        (
            "recordingStatusCallback",
            "//cdn.example.com/cb",
            "recording_status_callback",
            "//cdn.example.com/cb",
        ),
    ],
)
def test_valid_record_values(attribute: str, value: str, field: str, expected: object) -> None:
    record, findings = record_with(attribute, value)
    assert getattr(record, field) == expected
    assert findings == ()


def test_attribute_names_are_case_sensitive() -> None:
    record, findings = record_with("maxlength", "20")
    assert record.max_length == 3600
    assert [(f.code, f.fatal, f.attribute) for f in findings] == [(12200, False, "maxlength")]


def test_long_transcribed_recording_warns_13615_and_keeps_max_length() -> None:
    document = parse('<Record transcribe="true" maxLength="300"/>')
    (record,) = document.verbs
    assert isinstance(record, Record) and record.max_length == 300
    assert [(f.code, f.fatal) for f in document.findings] == [(13615, False)]


def test_record_ignores_nested_verbs_with_12200() -> None:
    document = parse('<Record maxLength="30"><Say>inside</Say><Play>x.mp3</Play></Record>')
    (record,) = document.verbs
    assert isinstance(record, Record) and record.max_length == 30
    assert [(f.code, f.fatal) for f in document.findings] == [(12200, False), (12200, False)]


def test_record_text_is_12200() -> None:
    document = parse("<Record>beep</Record>")
    assert [f.code for f in document.findings] == [12200]


def test_twilio_record_attributes_without_effect_here_are_accepted() -> None:
    document = parse('<Record recordingTrack="inbound" recordingConfigurationId="x"/>')
    assert document.findings == ()


# --- Other verbs --------------------------------------------------------------------------------


def test_say_invalid_loop_is_13510() -> None:
    document = parse('<Say loop="-2">hi</Say>')
    assert document.verbs == (Say(text="hi", voice=None, language=None, loop=1),)
    assert [(f.code, f.attribute) for f in document.findings] == [(13510, "loop")]


def test_empty_say_is_13520_and_skipped() -> None:
    document = parse("<Say>   </Say><Hangup/>")
    assert document.verbs == (Hangup(),)
    assert [(f.code, f.fatal) for f in document.findings] == [(13520, False)]


def test_long_say_is_13521_and_kept() -> None:
    text = "é" * 2100  # 4200 bytes of UTF-8
    document = parse(f"<Say>{text}</Say>")
    assert document.verbs == (Say(text=text, voice=None, language=None, loop=1),)
    assert [f.code for f in document.findings] == [13521]


def test_say_drops_text_of_non_ssml_children() -> None:
    document = parse("<Say>Hello <Play>x.mp3</Play>world</Say>")
    assert document.verbs == (Say(text="Hello world", voice=None, language=None, loop=1),)
    assert [f.code for f in document.findings] == [12200]


def test_play_invalid_loop_and_digits() -> None:
    document = parse('<Play loop="x" digits="12e">a.mp3</Play>')
    assert document.verbs == (Play(url="a.mp3", loop=1, digits=None),)
    assert sorted(f.code for f in document.findings) == [13410, 13430]


def test_play_with_only_bad_digits_has_no_url_and_is_fatal() -> None:
    with pytest.raises(TwimlError) as caught:
        parse('<Play digits="x"/>')
    assert [f.code for f in caught.value.findings] == [13430, 11100]
    assert caught.value.code == 11100


@pytest.mark.parametrize("url", ["file:///etc/passwd", "data:audio/wav;base64,AAAA", "ftp://h/a"])
def test_play_url_must_be_http_or_relative(url: str) -> None:
    with pytest.raises(TwimlError) as caught:
        parse(f"<Play>{url}</Play>")
    assert caught.value.code == 11100


def test_pause_length_must_be_positive() -> None:
    document = parse('<Pause length="0"/><Pause length="2.5"/>')
    assert document.verbs == (Pause(length=1), Pause(length=1))
    assert [f.code for f in document.findings] == [13910, 13910]


def test_redirect_method_and_missing_url() -> None:
    document = parse('<Redirect method="DELETE">/next</Redirect>')
    assert document.verbs == (Redirect(url="/next", method="POST"),)
    assert [f.code for f in document.findings] == [13710]
    with pytest.raises(TwimlError) as caught:
        parse("<Redirect>  </Redirect>")
    assert caught.value.code == 11100


def test_hangup_with_attributes_and_content() -> None:
    document = parse('<Hangup reason="x">now<Say>no</Say></Hangup>')
    assert document.verbs == (Hangup(),)
    assert [f.code for f in document.findings] == [12200, 12200, 12200]


def test_reject_reasons() -> None:
    """Twilio's reason values (default rejected); another value: 12200 and the default (Twilio
    documents no code for it); no attributes or content besides."""
    response = VoiceResponse()
    response.reject(reason="busy")
    assert parse_document(str(response).encode(), XML).verbs == (Reject(reason="busy"),)
    assert parse("<Reject/>").verbs == (Reject(reason="rejected"),)
    document = parse('<Reject reason="Busy" cause="x">no<Say>no</Say></Reject>')
    assert document.verbs == (Reject(reason="rejected"),)
    assert [(f.code, f.fatal) for f in document.findings] == [(12200, False)] * 4
    assert "reason" in str(document.findings[0])


def test_unknown_verbs_are_12200_and_skipped() -> None:
    document = parse("<say>lower case</say><Beep/><Hangup/>")
    assert document.verbs == (Hangup(),)
    assert [(f.code, f.fatal, f.verb) for f in document.findings] == [
        (12200, False, "say"),
        (12200, False, "Beep"),
    ]


def test_text_in_response_is_12200_and_ignored() -> None:
    document = parse("Hello<Hangup/>there")
    assert document.verbs == (Hangup(),)
    assert [(f.code, f.verb) for f in document.findings] == [(12200, "Response")]


def test_whitespace_in_response_is_fine() -> None:
    assert parse("\n   <Hangup/>\n\t").findings == ()


# --- Findings, errors and check_document ------------------------------------------------------


def test_finding_prints_line_verb_attribute_code_and_message() -> None:
    body = b'<?xml version="1.0"?>\n<Response>\n  <Record maxLength="0"/>\n</Response>'
    (found,) = check_document(body, XML)
    assert str(found) == (
        "line 3: <Record maxLength>: 13612 Record: Invalid maxLength value: "
        "'0' is not a whole number from 2 to 86400; using 3600"
    )


def test_finding_without_location_prints_code_and_message() -> None:
    found = Finding(code=12300, message="Invalid Content-Type: x", fatal=True)
    assert str(found) == "12300 Invalid Content-Type: x"
    assert str(Finding(12200, "m", False, 4, "Say")) == "line 4: <Say>: 12200 m"


def test_twiml_error_reports_first_fatal_finding_and_keeps_all() -> None:
    body = doc('<Pause length="0"/><Record action="file:///x"/><Redirect/>')
    with pytest.raises(TwimlError) as caught:
        parse_document(body, XML)
    error = caught.value
    assert [f.code for f in error.findings] == [13910, 11100, 11100]
    assert error.code == 11100
    assert error.message == error.findings[1].message
    assert str(error).startswith("11100: Invalid URL format")


def test_check_document_returns_fatal_and_non_fatal_findings_without_raising() -> None:
    findings = check_document(doc('<Pause length="x"/><Redirect/>'), XML)
    assert [(f.code, f.fatal) for f in findings] == [(13910, False), (11100, True)]
    assert check_document(b"<nope", XML)[0].code == 12100
    assert check_document(b"<Response/>", None)[0].code == 12300
    assert check_document(doc("<Hangup/>"), XML) == []


def test_document_carries_only_non_fatal_findings() -> None:
    document = parse('<Say loop="x">a</Say>')
    assert all(not f.fatal for f in document.findings)
    assert len(document.findings) == 1


def test_twiml_error_needs_a_finding() -> None:
    with pytest.raises(ValueError, match="at least one finding"):
        TwimlError([])
