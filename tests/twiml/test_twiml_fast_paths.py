"""The shortcuts of the uncached parse path (issue 13 row 7) give what the plain way gives:
verbs built by `positional_builder` equal (and are as frozen as) those the dataclass makes,
and the depth check that counts b"<" bytes instead of walking the tree still refuses every
too-deep document, whatever its encoding."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.twiml import Document, Record, Say, StartRecording, TwimlError, parse, parse_document
from adapter.twiml.content_types import classify
from adapter.twiml.parse import MAX_DEPTH
from adapter.twiml.verbs import Dial, Gather, Pause, Play, Redirect, Unsupported, positional_builder

VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
                   st.frozensets(st.sampled_from(["completed", "absent", "in-progress"])))
CLASSES = [Record, Say, StartRecording, Document, Play, Pause, Redirect, Dial, Gather, Unsupported]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
@given(data=st.data())
def test_the_builder_makes_what_the_dataclass_makes(cls: type, data: st.DataObject) -> None:
    names = [f.name for f in dataclasses.fields(cls)]
    values = [data.draw(VALUES) for _ in names]
    built = positional_builder(cls)(*values)
    made = cls(*values)
    assert type(built) is cls
    assert [getattr(built, name) for name in names] == values
    assert built == made
    assert repr(built) == repr(made)
    if all(isinstance(v, (type(None), bool, int, str, frozenset)) for v in values):
        assert hash(built) == hash(made)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, names[0], "changed")


def test_the_builder_takes_every_field_and_nothing_else() -> None:
    build = positional_builder(Say)
    with pytest.raises(TypeError):
        build("text", None, None)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        build("text", None, None, 1, 2)  # type: ignore[call-arg]


def _deep(encoding: str) -> bytes:
    depth = MAX_DEPTH  # <Response> plus MAX_DEPTH nested elements: one level too many
    body = "<Response>" + "<Connect>" * depth + "</Connect>" * depth + "</Response>"
    return f'<?xml version="1.0" encoding="{encoding}"?>{body}'.encode(encoding)


@pytest.mark.parametrize(
    "encoding", ["utf-8", "us-ascii", "iso-8859-1", "latin1", "utf-16", "utf-16-le", "utf-32",
                 "utf-7"])
def test_too_deep_is_12100_in_every_encoding(encoding: str) -> None:
    with pytest.raises(TwimlError) as raised:
        parse_document(_deep(encoding), "text/xml", remember=False)
    assert raised.value.code == 12100
    assert "nested" in raised.value.message


def test_too_deep_in_utf_16_without_a_declaration_is_12100() -> None:
    depth = MAX_DEPTH
    body = "<Response>" + "<Connect>" * depth + "</Connect>" * depth + "</Response>"
    with pytest.raises(TwimlError) as raised:
        parse_document(body.encode("utf-16"), "text/xml", remember=False)
    assert "nested" in raised.value.message


def test_too_deep_in_utf_7_with_no_angle_bracket_byte_is_12100() -> None:
    """UTF-7 may write "<" as "+ADw-": the body has no b"<" after its declaration, so only the
    walk of the tree can tell how deep it is."""
    depth = MAX_DEPTH
    body = "<Response>" + "<Connect>" * depth + "</Connect>" * depth + "</Response>"
    encoded = b'<?xml version="1.0" encoding="UTF-7"?>' + body.replace("<", "+ADw-").encode()
    assert encoded.count(b"<") == 1
    with pytest.raises(TwimlError) as raised:
        parse_document(encoded, "text/xml", remember=False)
    assert "nested" in raised.value.message


def test_many_angle_brackets_in_a_shallow_document_are_fine() -> None:
    body = ("<Response><!-- " + "<" * 100 + " --><Say>a &lt; b " + "&lt;" * 40
            + "</Say><![CDATA[" + "<" * 50 + "]]></Response>").encode()
    (say,) = parse_document(body, "text/xml", remember=False).verbs
    assert say == Say(text="a < b " + "<" * 40, voice=None, language=None, loop=1)


def test_content_types_are_classified_the_same_when_remembered() -> None:
    for header in ["text/xml", "TEXT/XML; charset=UTF-8", "audio/mpeg", "image/png", None]:
        first, second = classify(header), classify(header)
        assert first == second
        assert classify.__wrapped__(header) == first  # type: ignore[attr-defined]


ENCODINGS = st.sampled_from(["utf-8", "us-ascii", "iso-8859-1", "latin1", "utf-16", "utf-16-le",
                             "utf-16-be", "utf-32", "utf-7", None])


@st.composite
def nested_documents(draw: st.DrawFn) -> tuple[str, int]:
    """A <Response> holding a chain of nested <Connect>s around MAX_DEPTH deep, with shallow
    siblings and comments full of "<" on the way, and how deep it is: the depth check must
    refuse it exactly when that is over MAX_DEPTH."""
    levels = draw(st.integers(min_value=0, max_value=MAX_DEPTH + 4))  # below <Response>
    inner = ""
    for _ in range(levels):
        comment = "<!-- " + "<" * draw(st.integers(0, 5)) + " -->"
        siblings = "<Pause/>" * draw(st.integers(0, 2))
        inner = f"<Connect>{comment}{inner}</Connect>{siblings}"
    return f"<Response>{inner}</Response>", levels + 1


@settings(max_examples=300, deadline=None)
@given(document=nested_documents(), encoding=ENCODINGS)
def test_the_depth_bound_refuses_exactly_the_too_deep(
    document: tuple[str, int], encoding: str | None
) -> None:
    text, depth = document
    if encoding is None:
        body = text.encode()
    elif encoding == "utf-7":  # every "<" after the declaration written as "+ADw-"
        body = b'<?xml version="1.0" encoding="UTF-7"?>' + text.replace("<", "+ADw-").encode()
    else:
        body = f'<?xml version="1.0" encoding="{encoding}"?>{text}'.encode(encoding)
    try:
        parse_document(body, "text/xml", remember=False)
        refused = False
    except TwimlError as error:
        assert error.code == 12100
        refused = "nested" in error.message
    assert refused == (depth > MAX_DEPTH)


def test_every_doctype_marker_has_the_byte_looked_for_first() -> None:
    assert all(parse._MARKER_BYTE in marker for marker in parse._DOCTYPE_MARKERS)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le", "utf-16-be", "utf-16"])
def test_a_doctype_is_refused_in_every_encoding_the_bytes_are_searched_in(encoding: str) -> None:
    body = '<!DOCTYPE Response><Response><Hangup/></Response>'.encode(encoding)
    with pytest.raises(TwimlError) as raised:
        parse_document(body, "text/xml", remember=False)
    assert raised.value.code == 12100
    assert "DOCTYPE" in raised.value.message
