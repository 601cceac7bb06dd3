"""Validation of ``<Dial>`` and its nouns: a plain-text number, ``<Number>`` and ``<Sip>``.

Several targets ring at once. A ``<Dial>`` holding a noun this adapter does not implement yet
(``<Client>``, ``<Conference>``...) parses, whole, to `Unsupported`.
"""

from __future__ import annotations

from adapter.addresses import CALLER_ID, PHONE_NUMBER, SIP_URI_SCHEME_OPTIONAL
from adapter.twiml import codes
from adapter.twiml import rule_table as rules
from adapter.twiml.attributes import parse_dtmf
from adapter.twiml.element import Element, has_text, shown, unsupported
from adapter.twiml.recording_rules import (
    RECORD_DEFAULT_METHOD,
    RECORD_TRIM_VALUES,
    RECORDING_DEFAULT_TRACK,
    RECORDING_TRACKS,
    STATUS_CALLBACK_RULES,
    StatusCallback,
    status_callback,
)
from adapter.twiml.rule_table import RuleTable
from adapter.twiml.verbs import Dial, DialTarget, StartRecording, Unsupported

__all__ = [
    "DIAL_DEFAULT_TIMEOUT",
    "DIAL_DEFAULT_TIME_LIMIT",
    "DIAL_DEFAULT_TRIM",
    "DIAL_MAX_TIMEOUT",
    "DIAL_MIN_TIMEOUT",
    "DIAL_RECORD_VALUES",
    "DIAL_UNSUPPORTED_NOUNS",
    "dial_verb",
]

DIAL_DEFAULT_TIMEOUT = 30
DIAL_MIN_TIMEOUT = 5
DIAL_MAX_TIMEOUT = 600
DIAL_DEFAULT_TIME_LIMIT = 14400
DIAL_RECORD_VALUES = frozenset({
    "do-not-record", "record-from-answer", "record-from-ringing",
    "record-from-answer-dual", "record-from-ringing-dual", "true", "false",
})
# record="true" / "false", the older spellings, as the values they stand for.
_RECORD_ALIASES = {"true": "record-from-answer", "false": "do-not-record"}
# <Dial trim>: unlike <Record> and <Recording>, a <Dial> recording keeps its silence by default.
DIAL_DEFAULT_TRIM = "do-not-trim"
# <Dial> nouns this adapter does not implement yet: the whole <Dial> is Unsupported.
DIAL_UNSUPPORTED_NOUNS = frozenset(
    {"Client", "Conference", "Queue", "Application", "WhatsApp", "Sim"}
)
# Valid Twilio attributes this adapter does not act on (documented in twiml-support.md).
_DIAL_IGNORED = ("ringTone", "sequential", "referUrl", "referMethod", "callReason",
                 "recordingConfigurationId")
_NOUN_IGNORED = ("url", "method", "statusCallback", "statusCallbackMethod",
                 "statusCallbackEvent", "byoc", "machineDetection", "machineDetectionTimeout",
                 "amdStatusCallback", "amdStatusCallbackMethod", "username", "password")
_PHONE_PUNCTUATION = str.maketrans("", "", " ()-.")


def _timeout_in_range(timeout: int) -> tuple[int, codes.TwilioCode, str] | None:
    if DIAL_MIN_TIMEOUT <= timeout <= DIAL_MAX_TIMEOUT:
        return None
    clamped = min(max(timeout, DIAL_MIN_TIMEOUT), DIAL_MAX_TIMEOUT)
    return (clamped, codes.DIAL_INVALID_TIMEOUT,
            f"{timeout} is outside {DIAL_MIN_TIMEOUT}..{DIAL_MAX_TIMEOUT}; using {clamped}")


# <Dial>'s attributes in the order Twilio documents them, then its recording's (checked even
# when nothing is recorded), then the valid ones this adapter does not act on.
DIAL = RuleTable(
    rules.url("action", codes.INVALID_URL_FORMAT),
    rules.method("method", codes.DIAL_INVALID_METHOD, RECORD_DEFAULT_METHOD),
    rules.integer("timeout", codes.DIAL_INVALID_TIMEOUT, DIAL_DEFAULT_TIMEOUT, 1,
            check=_timeout_in_range),
    rules.value("callerId", lambda raw: raw if CALLER_ID.fullmatch(raw) else None,
          codes.DIAL_INVALID_CALLER_ID, None,
          "is not a phone number or SIP user; using the caller's"),
    rules.integer("timeLimit", codes.DIAL_INVALID_TIME_LIMIT, DIAL_DEFAULT_TIME_LIMIT, 1),
    rules.boolean("hangupOnStar", codes.DIAL_INVALID_HANGUP_ON_STAR, False),
    rules.boolean("answerOnBridge", codes.DIAL_INVALID_ANSWER_ON_BRIDGE, False),
    rules.choice("record", DIAL_RECORD_VALUES, "do-not-record", codes.DIAL_INVALID_RECORD),
    *STATUS_CALLBACK_RULES,
    rules.choice("recordingTrack", RECORDING_TRACKS, RECORDING_DEFAULT_TRACK),
    rules.choice("trim", RECORD_TRIM_VALUES, DIAL_DEFAULT_TRIM),
    *(rules.as_written(name) for name in _DIAL_IGNORED),
)
DIAL_NOUN = RuleTable(
    rules.value("sendDigits", parse_dtmf, codes.DIAL_NUMBER_INVALID_SEND_DIGITS, None,
          "is not DTMF; ignored"),
    *(rules.as_written(name) for name in _NOUN_IGNORED),
)


def dial_verb(el: Element) -> Dial | Unsupported | None:
    """<Dial> with a plain-text number, <Number> or <Sip> nouns (several ring at once)."""
    children = el.children()
    for child in children:
        if child.tag in DIAL_UNSUPPORTED_NOUNS:
            return unsupported(f"Dial/{child.tag}", el.node, child)
    (action, method_, timeout, caller_id, time_limit, hangup_on_star, answer_on_bridge, record,
     callback_url, callback_method, callback_events, track, trim, *_ignored) = DIAL.read(el)
    record = _RECORD_ALIASES.get(record, record)
    recording = _dial_recording(
        record, status_callback((callback_url, callback_method, callback_events)), track, trim
    )

    targets: list[DialTarget] = []
    text = (el.node.text or "").strip()
    if text:
        target = _number_target(el, text, None)
        if target is not None:
            targets.append(target)
    for child in children:
        noun = el.nested(child)
        if noun.name in ("Number", "Sip"):
            targets.extend(_dial_noun(noun))
        else:
            noun.report(codes.DIAL_INVALID_NESTED_ELEMENT,
                        f"<{noun.name}> cannot be nested in <Dial>; ignored")
        if has_text(child.tail):
            el.report(codes.SCHEMA_VALIDATION_WARNING, "text between <Dial> nouns is ignored")
    if not targets:
        el.report(codes.DIAL_INVALID_NESTED_ELEMENT, "<Dial> has nothing to call; skipped")
        return None
    return Dial(
        targets=tuple(targets), action=action, method=method_, timeout=timeout,
        caller_id=caller_id, time_limit=time_limit, hangup_on_star=hangup_on_star,
        answer_on_bridge=answer_on_bridge, record=record, recording=recording,
    )


def _dial_recording(
    record: str, callback: StatusCallback, track: str, trim: str
) -> StartRecording | None:
    """``<Dial record>``'s recording, as a background recording of the parent call: mono, or
    dual (the caller on channel 1, the dialed party on channel 2), with its own status
    callback, track and trim."""
    if record == "do-not-record":
        return None
    return StartRecording(name=None, **callback, trim=trim, track=track,
                          channels="dual" if record.endswith("-dual") else "mono")


def _dial_noun(noun: Element) -> list[DialTarget]:
    """One <Number> or <Sip>: its target, or none when its text is not one we can dial."""
    send_digits, *_ignored = DIAL_NOUN.read(noun)
    text = (noun.node.text or "").strip()
    for child in noun.children():
        noun.report_nested(child)
    if noun.name == "Number":
        target = _number_target(noun, text, send_digits)
        return [target] if target is not None else []
    if not SIP_URI_SCHEME_OPTIONAL.fullmatch(text):
        noun.report(codes.DIAL_SIP_INVALID_URI,
                    f"{shown(text)} is not a sip:user@host URI this adapter can dial; skipped")
        return []
    uri = text if text.startswith(("sip:", "sips:")) else f"sip:{text}"
    return [DialTarget("sip", uri, send_digits)]


def _number_target(el: Element, text: str, send_digits: str | None) -> DialTarget | None:
    """A phone number written with or without punctuation, which is dropped."""
    number = text.translate(_PHONE_PUNCTUATION)
    if not PHONE_NUMBER.fullmatch(number):
        el.report(codes.DIAL_INVALID_PHONE_NUMBER,
                  f"{shown(text)} is not a phone number; skipped")
        return None
    return DialTarget("number", number, send_digits)
