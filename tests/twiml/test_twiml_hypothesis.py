"""Property tests: no input makes the parser fail in any way but TwimlError, and any value of
a <Record> attribute either validates or yields that attribute's documented code."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.twiml import Document, Finding, Record, TwimlError, check_document, parse_document

CONTENT_TYPES = (
    st.sampled_from(
        [
            "text/xml",
            "application/xml",
            "text/html",
            "text/plain",
            "text/plain; charset=latin-1",
            "text/plain; charset=nope",
            "audio/mpeg",
            "application/json",
            "",
        ]
    )
    | st.none()
    | st.text(max_size=40)
)

# Characters XML 1.0 allows in attribute values (lxml refuses the rest when serialising).
XML_TEXT = st.text(
    alphabet=st.characters(
        exclude_categories=["Cs"],
        exclude_characters="".join(chr(c) for c in range(32) if c not in (9, 10, 13))
        + "\ufffe\uffff",
    ),
    max_size=30,
)

TWIML_SNIPPETS = st.sampled_from(
    [
        "<Response>",
        "</Response>",
        "<Record/>",
        '<Record maxLength="',
        "<Say>",
        "</Say>",
        "<Play>",
        "&amp;",
        "&lol;",
        "<!DOCTYPE r>",
        '<?xml version="1.0"?>',
        "<![CDATA[x]]>",
        "<!-- c -->",
        '<Redirect method="GET">/x</Redirect>',
        "\x00",
        "\xff",
    ]
)


def _assert_outcome(body: bytes, content_type: str | None) -> None:
    findings = check_document(body, content_type, "https://app.example.com/x")
    assert all(isinstance(f, Finding) for f in findings)
    try:
        document = parse_document(body, content_type, url="https://app.example.com/x")
    except TwimlError as error:
        assert any(f.fatal for f in error.findings)
        assert error.code == next(f.code for f in error.findings if f.fatal)
        assert list(error.findings) == findings
    else:
        assert isinstance(document, Document)
        assert list(document.findings) == findings
        assert not any(f.fatal for f in findings)


@settings(max_examples=300)
@given(body=st.binary(max_size=2000), content_type=CONTENT_TYPES)
def test_arbitrary_bytes_only_ever_raise_twiml_error(body: bytes, content_type: str | None) -> None:
    _assert_outcome(body, content_type)


@settings(max_examples=300)
@given(pieces=st.lists(TWIML_SNIPPETS | XML_TEXT, max_size=25))
def test_twiml_like_fragments_only_ever_raise_twiml_error(pieces: list[str]) -> None:
    _assert_outcome("".join(pieces).encode("utf-8", "surrogatepass"), "text/xml")


# Every <Record> attribute with the codes an invalid value may produce.
RECORD_ATTRIBUTE_CODES: dict[str, set[int]] = {
    "method": {13610},
    "timeout": {13611},
    "maxLength": {13612},
    "finishOnKey": {13613},
    "transcribe": {13614},
    "playBeep": {13616},
    "trim": {13699},
    "recordingStatusCallbackEvent": {13621},
    "recordingStatusCallbackMethod": {12200},  # Twilio has no Record-specific code for it
    "action": {11100},
    "recordingStatusCallback": {13256},
    "transcribeCallback": {13257},
}


def _record(attribute: str, value: str) -> tuple[list[Finding], Record | None]:
    body = f"<Response><Record {attribute}={quoteattr(value)}/></Response>".encode()
    findings = check_document(body, "text/xml")
    try:
        document = parse_document(body, "text/xml")
    except TwimlError:
        return findings, None
    (record,) = document.verbs
    assert isinstance(record, Record)
    return findings, record


@settings(max_examples=100)
@given(attribute=st.sampled_from(sorted(RECORD_ATTRIBUTE_CODES)), value=XML_TEXT)
def test_any_record_attribute_value_validates_or_gets_its_code(attribute: str, value: str) -> None:
    findings, record = _record(attribute, value)
    assert {f.code for f in findings} <= RECORD_ATTRIBUTE_CODES[attribute]
    assert all(f.verb == "Record" and f.attribute == attribute for f in findings)
    if any(f.fatal for f in findings):
        assert record is None
    else:
        assert record is not None


@settings(max_examples=100)
@given(
    attribute=st.sampled_from(
        ["method", "timeout", "maxLength", "finishOnKey", "playBeep", "trim", "transcribe"]
    ),
    value=XML_TEXT,
)
def test_non_url_record_attributes_only_give_136xx(attribute: str, value: str) -> None:
    findings, _record_or_none = _record(attribute, value)
    assert all(13600 <= f.code <= 13699 for f in findings)


@given(
    seconds=st.integers(min_value=0, max_value=999_999_999), pad=st.sampled_from(["", " ", "\n"])
)
def test_valid_timeouts_round_trip(seconds: int, pad: str) -> None:
    findings, record = _record("timeout", f"{pad}{seconds}{pad}")
    assert findings == []
    assert record is not None and record.timeout == seconds


@given(seconds=st.integers(min_value=-10, max_value=100_000))
def test_max_length_range(seconds: int) -> None:
    findings, record = _record("maxLength", str(seconds))
    assert record is not None
    if 2 <= seconds <= 86400:
        assert (record.max_length, findings) == (seconds, [])
    else:
        assert record.max_length == 3600
        assert [f.code for f in findings] == [13612]


@given(keys=st.text(alphabet="0123456789#*", max_size=12))
def test_any_subset_of_keys_finishes_a_recording(keys: str) -> None:
    findings, record = _record("finishOnKey", keys)
    assert findings == []
    assert record is not None and record.finish_on_key == keys


# Every verb the adapter runs, with the attributes Twilio documents for it (and a stray one).
VERB_ATTRIBUTES: dict[str, list[str]] = {
    "Say": ["voice", "language", "loop"],
    "Play": ["loop", "digits"],
    "Pause": ["length"],
    "Redirect": ["method"],
    "Hangup": [],
    "Record": sorted(RECORD_ATTRIBUTE_CODES),
    "Dial": ["action", "method", "timeout", "hangupOnStar", "timeLimit", "callerId", "record",
             "answerOnBridge", "ringTone", "recordingStatusCallback"],
}
NOUNS = st.sampled_from([
    "", "+15551230000", "<Number>+15551230000</Number>", "<Sip>sip:alice@example.com</Sip>",
    "<Number sendDigits='1w2'>100</Number>", "<Client>bob</Client>",
    "https://app.example.com/a.mp3", "/relative",
])


@st.composite
def verb_documents(draw: st.DrawFn) -> tuple[str, bytes]:
    verb = draw(st.sampled_from(sorted(VERB_ATTRIBUTES)))
    names = VERB_ATTRIBUTES[verb] + ["bogus"]
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=4))
    attributes = " ".join(f"{name}={quoteattr(draw(XML_TEXT))}" for name in chosen)
    body = draw(NOUNS | XML_TEXT.map(lambda t: t.replace("&", "&amp;").replace("<", "&lt;")))
    return verb, f"<Response><{verb} {attributes}>{body}</{verb}></Response>".encode()


@settings(max_examples=300)
@given(document=verb_documents())
def test_any_verb_with_any_attributes_validates_or_gets_findings(
    document: tuple[str, bytes]
) -> None:
    verb, body = document
    _assert_outcome(body, "text/xml")
    for found in check_document(body, "text/xml"):
        assert found.verb in (verb, "Number", "Sip", "Client", None)
        assert "\n" not in str(found)
