"""Validation of the recording verbs: ``<Record>``, and ``<Start>``/``<Stop>`` with their nouns.

A ``<Recording>`` noun becomes a `StartRecording` or `StopRecording` verb; the other nouns of
``<Start>``/``<Stop>`` (streams, transcriptions...) parse to `Unsupported`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

from adapter.twiml import codes
from adapter.twiml import rule_table as rules
from adapter.twiml.attributes import parse_bool, parse_events, parse_finish_keys
from adapter.twiml.element import Element, unsupported
from adapter.twiml.rule_table import Rule, RuleTable
from adapter.twiml.verbs import Record, StartRecording, StopRecording, Verb, positional_builder

__all__ = [
    "RECORDING_CHANNELS",
    "RECORDING_DEFAULT_CHANNELS",
    "RECORDING_DEFAULT_TRACK",
    "RECORDING_TRACKS",
    "RECORD_DEFAULT_EVENTS",
    "RECORD_DEFAULT_FINISH_ON_KEY",
    "RECORD_DEFAULT_MAX_LENGTH",
    "RECORD_DEFAULT_MAX_LENGTH_TRANSCRIBED",
    "RECORD_DEFAULT_METHOD",
    "RECORD_DEFAULT_TIMEOUT",
    "RECORD_DEFAULT_TRIM",
    "RECORD_MAX_LENGTH_LIMIT",
    "RECORD_MAX_TRANSCRIBED_LENGTH",
    "RECORD_MIN_MAX_LENGTH",
    "RECORD_TRIM_VALUES",
    "START_NOUNS",
    "STATUS_CALLBACK_RULES",
    "record_verb",
    "start_or_stop_verbs",
    "status_callback",
]

RECORD_DEFAULT_METHOD = "POST"
RECORD_DEFAULT_TIMEOUT = 5
RECORD_DEFAULT_FINISH_ON_KEY = "1234567890*#"
RECORD_DEFAULT_MAX_LENGTH = 3600
RECORD_DEFAULT_MAX_LENGTH_TRANSCRIBED = 120
RECORD_MAX_TRANSCRIBED_LENGTH = 120
RECORD_MIN_MAX_LENGTH = 2  # "Integer greater than 1"
RECORD_MAX_LENGTH_LIMIT = 86400  # 24 h, the largest account call-duration limit
RECORD_DEFAULT_TRIM = "trim-silence"
RECORD_INVALID_TRIM_FALLBACK = "do-not-trim"  # 13699: "Defaults to no trim."
RECORD_TRIM_VALUES = frozenset({"trim-silence", "do-not-trim"})
RECORD_DEFAULT_EVENTS = frozenset({"completed"})
RECORDING_TRACKS = frozenset({"inbound", "outbound", "both"})
RECORDING_CHANNELS = frozenset({"mono", "dual"})
RECORDING_DEFAULT_TRACK = "both"
RECORDING_DEFAULT_CHANNELS = "dual"
# Nouns of <Start>/<Stop> other than <Recording>: parsed to Unsupported("Start/<noun>").
START_NOUNS = frozenset({"Recording", "Stream", "Siprec", "Transcription", "ConversationRelay"})


class StatusCallback(TypedDict):
    """Where and how the recording's status callback goes (<Record>, <Recording> and
    <Dial record> alike)."""

    recording_status_callback: str | None
    recording_status_callback_method: str
    recording_status_callback_event: frozenset[str]


# ``recordingStatusCallback``, its method (Twilio documents no verb-specific code for a bad one:
# a 12200 warning) and its events (13621, fatal), in that order, in every table that has them.
STATUS_CALLBACK_RULES: tuple[Rule, ...] = (
    rules.url("recordingStatusCallback", codes.RECORDING_STATUS_CALLBACK_URL_INVALID),
    rules.method("recordingStatusCallbackMethod", codes.SCHEMA_VALIDATION_WARNING,
           RECORD_DEFAULT_METHOD),
    rules.value("recordingStatusCallbackEvent", parse_events,
          codes.RECORD_INVALID_STATUS_CALLBACK_EVENT, RECORD_DEFAULT_EVENTS,
          "is not a space-separated list of in-progress, completed and absent"),
)


def status_callback(values: Sequence[Any]) -> StatusCallback:
    """The `STATUS_CALLBACK_RULES` values, read in that order."""
    callback, method_, events = values
    return StatusCallback(recording_status_callback=callback,
                          recording_status_callback_method=method_,
                          recording_status_callback_event=events)


def _too_long_to_transcribe(max_length: int) -> tuple[int, codes.TwilioCode, str] | None:
    if max_length <= RECORD_MAX_TRANSCRIBED_LENGTH:
        return None
    return (max_length, codes.RECORD_MAX_LENGTH_TOO_HIGH_FOR_TRANSCRIPTION,
            f"maxLength {max_length} is over {RECORD_MAX_TRANSCRIBED_LENGTH} s; "
            "recordings that long are not transcribed")


def _record_table(transcribed: bool) -> RuleTable:
    """``<Record>``'s attributes in the order Twilio documents them; a transcribed recording
    has a shorter default maxLength, and a longer one is reported (13615) but kept."""
    return RuleTable(
        rules.url("action", codes.INVALID_URL_FORMAT),
        rules.method("method", codes.RECORD_INVALID_METHOD, RECORD_DEFAULT_METHOD),
        rules.integer("timeout", codes.RECORD_INVALID_TIMEOUT, RECORD_DEFAULT_TIMEOUT),
        rules.value("finishOnKey", parse_finish_keys, codes.RECORD_INVALID_FINISH_ON_KEY,
              RECORD_DEFAULT_FINISH_ON_KEY,
              f"has characters other than 0-9, # and *; using {RECORD_DEFAULT_FINISH_ON_KEY}"),
        rules.boolean("transcribe", codes.RECORD_INVALID_TRANSCRIBE, False),
        rules.integer("maxLength", codes.RECORD_INVALID_MAX_LENGTH,
                RECORD_DEFAULT_MAX_LENGTH_TRANSCRIBED if transcribed else RECORD_DEFAULT_MAX_LENGTH,
                RECORD_MIN_MAX_LENGTH, RECORD_MAX_LENGTH_LIMIT,
                check=_too_long_to_transcribe if transcribed else None),
        rules.boolean("playBeep", codes.RECORD_INVALID_PLAY_BEEP, True),
        # Absent, trim-silence; another value, 13699 and no trim (Twilio's "Defaults to no trim").
        Rule("trim", {trim: trim for trim in RECORD_TRIM_VALUES}.get, codes.RECORD_INVALID_TRIM,
             RECORD_DEFAULT_TRIM,
             f"is not trim-silence or do-not-trim; using {RECORD_INVALID_TRIM_FALLBACK}",
             fallback=RECORD_INVALID_TRIM_FALLBACK),
        *STATUS_CALLBACK_RULES,
        rules.url("transcribeCallback", codes.TRANSCRIBE_CALLBACK_URL_INVALID),
        # Valid Twilio attributes this adapter does not act on (documented in twiml-support.md).
        rules.as_written("recordingTrack"),
        rules.as_written("recordingConfigurationId"),
    )


RECORD = _record_table(transcribed=False)
RECORD_TRANSCRIBED = _record_table(transcribed=True)
RECORDING = RuleTable(
    rules.as_written("name"),
    *STATUS_CALLBACK_RULES,
    rules.choice("trim", RECORD_TRIM_VALUES, RECORD_DEFAULT_TRIM),
    rules.choice("track", RECORDING_TRACKS, RECORDING_DEFAULT_TRACK),
    rules.choice("channels", RECORDING_CHANNELS, RECORDING_DEFAULT_CHANNELS),
    rules.as_written("recordingConfigurationId"),
)
STOP_RECORDING = RuleTable(rules.as_written("name"))
START_OR_STOP = RuleTable()


_new_record = positional_builder(Record)
_new_start_recording = positional_builder(StartRecording)


def record_verb(el: Element) -> Record:
    """``<Record>``: every attribute checked in the order Twilio documents them."""
    transcribe_raw = el.node.get("transcribe")
    transcribed = transcribe_raw is not None and parse_bool(transcribe_raw) is True
    (action, method_, timeout, finish_on_key, transcribe, max_length, play_beep, trim,
     callback, callback_method, callback_events, transcribe_callback, _track, _configuration) = (
        RECORD_TRANSCRIBED if transcribed else RECORD).read(el)
    el.report_content()
    return _new_record(action, method_, timeout, finish_on_key, max_length, play_beep, trim,
                       callback, callback_method, callback_events, transcribe,
                       transcribe_callback)


def _recording_noun(el: Element) -> StartRecording:
    """``<Start><Recording>``: a background recording of the call."""
    name, callback, callback_method, callback_events, trim, track, channels, _configuration = (
        RECORDING.read(el))
    el.report_content()
    return _new_start_recording(name, callback, callback_method, callback_events, trim, track,
                                channels)


def start_or_stop_verbs(el: Element) -> list[Verb]:
    """<Start>/<Stop>: each <Recording> noun becomes a verb, in order; other nouns Unsupported."""
    START_OR_STOP.read(el)
    texty, children = el.text_and_children()
    if texty:
        el.report_ignored_text()
    verbs: list[Verb] = []
    starts = el.name == "Start"
    for child in children:
        noun = el.nested(child)
        if noun.name == "Recording":
            if starts:
                verbs.append(_recording_noun(noun))
            else:
                (name,) = STOP_RECORDING.read(noun)
                verbs.append(StopRecording(name=name))
        elif noun.name in START_NOUNS:
            verbs.append(unsupported(f"{el.name}/{noun.name}", child, child))
        else:
            el.report_nested(child)
    if not verbs:
        el.report(codes.SCHEMA_VALIDATION_WARNING, f"<{el.name}> has no noun; skipped")
    return verbs
