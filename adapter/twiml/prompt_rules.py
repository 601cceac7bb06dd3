"""Validation of the verbs that play something to the caller: ``<Say>``, ``<Play>``, ``<Pause>``.

``<Say>`` keeps the text of the SSML elements Twilio accepts inside it and drops their markup.
"""

from __future__ import annotations

from lxml import etree

from adapter.twiml import codes
from adapter.twiml.attributes import parse_dtmf
from adapter.twiml.codes import TwilioCode
from adapter.twiml.element import Element
from adapter.twiml.rule_table import RuleTable, as_written, integer, value
from adapter.twiml.verbs import Pause, Play, Say, positional_builder

__all__ = [
    "PAUSE_DEFAULT_LENGTH",
    "PLAY_DEFAULT_LOOP",
    "SAY_DEFAULT_LOOP",
    "SAY_IN_GATHER",
    "SAY_MAX_BYTES",
    "SSML_ELEMENTS",
    "pause_verb",
    "play_verb",
    "say_too_long",
    "say_verb",
]

SAY_DEFAULT_LOOP = 1
SAY_MAX_BYTES = 4096  # Basic TTS limit quoted by 13521
PLAY_DEFAULT_LOOP = 1
PAUSE_DEFAULT_LENGTH = 1
# SSML elements Twilio accepts inside <Say> (the twilio helper library's Say children).
SSML_ELEMENTS = frozenset(
    {"break", "emphasis", "lang", "p", "phoneme", "prosody", "s", "say-as", "sub", "w"}
)


def say_too_long(text: str) -> str | None:
    """What is wrong with `text` as the text to say (13521, a warning), or None."""
    if len(text) * 4 <= SAY_MAX_BYTES:  # a character is at most 4 bytes in UTF-8
        return None
    size = len(text.encode("utf-8"))
    if size > SAY_MAX_BYTES:
        return f"the text is {size} bytes, over the {SAY_MAX_BYTES}-byte limit"
    return None


def _say_table(loop_code: TwilioCode) -> RuleTable:
    """``<Say>``'s attributes; `loop_code` is Twilio's code for a bad `loop` (inside
    ``<Gather>`` it has its own, 13322)."""
    return RuleTable(
        as_written("voice"),
        as_written("language"),
        integer("loop", loop_code, SAY_DEFAULT_LOOP),
    )


SAY = _say_table(codes.SAY_INVALID_LOOP)
SAY_IN_GATHER = _say_table(codes.GATHER_SAY_INVALID_LOOP)
PLAY = RuleTable(
    integer("loop", codes.PLAY_INVALID_LOOP, PLAY_DEFAULT_LOOP),
    value("digits", parse_dtmf, codes.PLAY_INVALID_DIGITS, None,
          "may only contain 0-9, A-D, *, #, w and W; ignored"),
)
PAUSE = RuleTable(
    integer("length", codes.PAUSE_INVALID_LENGTH, PAUSE_DEFAULT_LENGTH, minimum=1),
)


_new_say = positional_builder(Say)


def say_verb(el: Element, table: RuleTable = SAY) -> Say | None:
    """``<Say>``; skipped when there is no text to say. `table`: its attributes' rules (`SAY`,
    or `SAY_IN_GATHER`)."""
    voice, language, loop = table.read(el)
    node = el.node
    text = (_ssml_text(node, el) if len(node) else node.text or "").strip()
    if not text:
        el.report(codes.SAY_INVALID_TEXT, "there is no text to say; <Say> skipped")
        return None
    too_long = say_too_long(text)
    if too_long is not None:
        el.report(codes.SAY_TEXT_TOO_LONG, too_long)
    return _new_say(text, voice, language, loop)


def _ssml_text(element: etree._Element, el: Element) -> str:
    """The text of `element`'s content, keeping SSML children's text and dropping others'."""
    pieces = [element.text or ""]
    for child in element:
        if isinstance(child.tag, str):
            if child.tag in SSML_ELEMENTS:
                pieces.append(_ssml_text(child, el))
            else:
                el.report_nested(child)
        pieces.append(child.tail or "")
    return "".join(pieces)


def play_verb(el: Element) -> Play:
    """``<Play>``: an audio URL as its text, and/or DTMF `digits`."""
    loop, digits = PLAY.read(el)
    url = el.text_url(required=digits is None)
    return Play(url=url, loop=loop, digits=digits)


def pause_verb(el: Element) -> Pause:
    """``<Pause>`` for at least one second."""
    (length,) = PAUSE.read(el)
    el.report_content()
    return Pause(length=length)
