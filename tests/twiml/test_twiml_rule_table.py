"""The compiled rule tables and the remembered documents: findings in Twilio's documented order
whatever order a document writes its attributes in, the one-step URL check agreeing with
urlsplit's reading, and a bounded memory of valid documents that never replaces reading."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.twiml.voice_response import VoiceResponse

import adapter.twiml.parse as parse_module
from adapter.twiml import Record, TwimlError, check_document, parse_document
from adapter.twiml.attributes import fetchable_by_urlsplit, is_fetchable_url
from adapter.twiml.recording_rules import RECORD
from adapter.twiml.rule_table import Rule, RuleTable

XML = "text/xml"


def _body(response: VoiceResponse) -> bytes:
    return str(response).encode()


def test_findings_follow_the_rules_order_not_the_documents() -> None:
    """<Record> with bad values in another order (the twilio library writes attributes in
    alphabetical order: maxLength, method, playBeep, timeout, trim): the findings still come
    in Twilio's documented order, then the unknown attributes in the document's order."""
    response = VoiceResponse()
    response.record(
        zeta="1", trim="sometimes", play_beep="maybe", max_length="1", timeout="soon",
        method="PUT", alpha="2",
    )
    body = _body(response)
    assert body.index(b"maxLength") < body.index(b"method") < body.index(b"timeout")
    document = parse_document(body, XML, remember=False)
    assert [(f.code, f.attribute) for f in document.findings] == [
        (13610, "method"), (13611, "timeout"), (13612, "maxLength"), (13616, "playBeep"),
        (13699, "trim"), (12200, "alpha"), (12200, "zeta"),
    ]
    (record,) = document.verbs
    assert isinstance(record, Record)
    assert (record.method, record.timeout, record.max_length, record.play_beep, record.trim) == (
        "POST", 5, 3600, True, "do-not-trim")


def test_transcribed_record_gets_its_own_default_and_check_in_one_pass() -> None:
    """transcribe written after maxLength still decides maxLength's default and its check."""
    response = VoiceResponse()
    response.record(max_length="x", transcribe="true")
    (finding,) = parse_document(_body(response), XML, remember=False).findings
    assert (finding.code, finding.attribute) == (13612, "maxLength")
    assert finding.message.endswith("using 120")
    response = VoiceResponse()
    response.record(max_length="300", transcribe="TRUE")
    document = parse_document(_body(response), XML, remember=False)
    assert [f.code for f in document.findings] == [13615]
    assert isinstance(document.verbs[0], Record) and document.verbs[0].max_length == 300


def test_a_table_refuses_two_rules_for_one_attribute() -> None:
    with pytest.raises(ValueError, match="two rules"):
        RuleTable(Rule("timeout"), Rule("timeout"))
    assert RECORD.names[:3] == ("action", "method", "timeout")


# ASCII URL characters, the ones urlsplit strips or refuses, and NFKC look-alikes of / and 0.
URL_CHARACTERS = "aZ09.-:/?#@[]% \t\r\n\x00\x1f\u00e9\uff10\uff0f"
URLISH = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from(["", "http://", "https://", "HTTPS://", "//", "/", "http:", "ftp://",
                     "file:", " http://", "http:///", "https://[", "\thttp://"]),
    st.text(alphabet=st.sampled_from(list(URL_CHARACTERS)), max_size=12),
)


@settings(max_examples=2000)
@given(value=URLISH | st.text(max_size=20))
def test_the_one_step_url_check_agrees_with_urlsplit(value: str) -> None:
    assert is_fetchable_url(value) is fetchable_by_urlsplit(value)


def _recording_document(number: int) -> bytes:
    response = VoiceResponse()
    response.say(f"Message {number}")
    return _body(response)


def test_a_valid_document_is_remembered_and_shared() -> None:
    body = _recording_document(0)
    first = parse_document(body, XML)
    assert parse_document(body, XML) is first
    fresh = parse_document(body, XML, remember=False)
    assert fresh == first and fresh is not first


def test_a_refused_document_is_read_again_each_time() -> None:
    body = b"<Response><Record recordingStatusCallbackEvent='never'/></Response>"
    errors = []
    for _ in range(2):
        with pytest.raises(TwimlError) as raised:
            parse_document(body, XML)
        errors.append(raised.value)
    assert errors[0] is not errors[1]
    assert errors[0].findings == errors[1].findings
    assert [f.code for f in errors[0].findings] == [13621]
    assert check_document(body, XML) == list(errors[0].findings)


def test_the_memory_is_bounded_in_documents_and_in_body_size() -> None:
    for number in range(parse_module.REMEMBERED_DOCUMENTS + 20):
        parse_document(_recording_document(number), XML)
    remembered = parse_module._remembered_document.cache_info()
    assert remembered.currsize == parse_module.REMEMBERED_DOCUMENTS
    response = VoiceResponse()
    response.say("x" * parse_module.REMEMBERED_BODY_BYTES)
    large = _body(response)
    assert len(large) > parse_module.REMEMBERED_BODY_BYTES
    assert parse_document(large, XML) is not parse_document(large, XML)
    assert parse_document(large, XML) == parse_document(large, XML, remember=False)
