"""Validation of the recording verbs: ``<Record>``, and ``<Start>``/``<Stop>`` with their nouns.

A ``<Recording>`` noun becomes a `StartRecording` or `StopRecording` verb; the other nouns of
``<Start>``/``<Stop>`` (streams, transcriptions...) parse to `Unsupported`.
"""

from __future__ import annotations

from typing import TypedDict

from adapter.twiml import codes
from adapter.twiml.attributes import parse_events, parse_finish_keys
from adapter.twiml.element import Element, shown, unsupported
from adapter.twiml.verbs import Record, StartRecording, StopRecording, Verb

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
    "record_verb",
    "start_or_stop_verbs",
    "status_callback_attributes",
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


def record_verb(el: Element) -> Record:
    """``<Record>``: every attribute checked in the order Twilio documents them."""
    action = el.url("action", codes.INVALID_URL_FORMAT)
    method = el.method("method", codes.RECORD_INVALID_METHOD, RECORD_DEFAULT_METHOD)
    timeout = el.integer("timeout", codes.RECORD_INVALID_TIMEOUT, RECORD_DEFAULT_TIMEOUT)
    finish_on_key = el.value(
        "finishOnKey",
        parse_finish_keys,
        codes.RECORD_INVALID_FINISH_ON_KEY,
        RECORD_DEFAULT_FINISH_ON_KEY,
        f"has characters other than 0-9, # and *; using {RECORD_DEFAULT_FINISH_ON_KEY}",
    )

    transcribe = el.boolean("transcribe", codes.RECORD_INVALID_TRANSCRIBE, False)
    default_max_length = (
        RECORD_DEFAULT_MAX_LENGTH_TRANSCRIBED if transcribe else RECORD_DEFAULT_MAX_LENGTH
    )
    max_length = el.integer(
        "maxLength",
        codes.RECORD_INVALID_MAX_LENGTH,
        default_max_length,
        RECORD_MIN_MAX_LENGTH,
        RECORD_MAX_LENGTH_LIMIT,
    )
    if transcribe and max_length > RECORD_MAX_TRANSCRIBED_LENGTH:
        el.report(
            codes.RECORD_MAX_LENGTH_TOO_HIGH_FOR_TRANSCRIPTION,
            f"maxLength {max_length} is over {RECORD_MAX_TRANSCRIBED_LENGTH} s; "
            "recordings that long are not transcribed",
            "maxLength",
        )

    play_beep = el.boolean("playBeep", codes.RECORD_INVALID_PLAY_BEEP, True)
    trim = _record_trim(el)
    status_callback = status_callback_attributes(el)
    transcribe_callback = el.url("transcribeCallback", codes.TRANSCRIBE_CALLBACK_URL_INVALID)

    # Valid Twilio attributes this adapter does not act on (documented in twiml-support.md).
    el.take("recordingTrack")
    el.take("recordingConfigurationId")

    el.report_leftovers()
    return Record(
        action=action,
        method=method,
        timeout=timeout,
        finish_on_key=finish_on_key,
        max_length=max_length,
        play_beep=play_beep,
        trim=trim,
        **status_callback,
        transcribe=transcribe,
        transcribe_callback=transcribe_callback,
    )


def _record_trim(el: Element) -> str:
    """``<Record trim>``: absent, trim-silence; another value, 13699 and no trim (Twilio's
    "Defaults to no trim")."""
    raw = el.take("trim")
    if raw is None:
        return RECORD_DEFAULT_TRIM
    if raw in RECORD_TRIM_VALUES:
        return raw
    el.report(
        codes.RECORD_INVALID_TRIM,
        f"{shown(raw)} is not trim-silence or do-not-trim; using {RECORD_INVALID_TRIM_FALLBACK}",
        "trim",
    )
    return RECORD_INVALID_TRIM_FALLBACK


class StatusCallback(TypedDict):
    """Where and how the recording's status callback goes (<Record>, <Recording> and
    <Dial record> alike)."""

    recording_status_callback: str | None
    recording_status_callback_method: str
    recording_status_callback_event: frozenset[str]


def status_callback_attributes(el: Element) -> StatusCallback:
    """``recordingStatusCallback``, its method (Twilio documents no verb-specific code for a
    bad one: a 12200 warning) and its events (13621, fatal), read in that order."""
    return StatusCallback(
        recording_status_callback=el.url(
            "recordingStatusCallback", codes.RECORDING_STATUS_CALLBACK_URL_INVALID
        ),
        recording_status_callback_method=el.method(
            "recordingStatusCallbackMethod", codes.SCHEMA_VALIDATION_WARNING, RECORD_DEFAULT_METHOD
        ),
        recording_status_callback_event=el.value(
            "recordingStatusCallbackEvent",
            parse_events,
            codes.RECORD_INVALID_STATUS_CALLBACK_EVENT,
            RECORD_DEFAULT_EVENTS,
            "is not a space-separated list of in-progress, completed and absent",
        ),
    )


def _recording_noun(el: Element) -> StartRecording:
    """``<Start><Recording>``: a background recording of the call."""
    verb = StartRecording(
        name=el.take("name"),
        **status_callback_attributes(el),
        trim=el.choice("trim", RECORD_TRIM_VALUES, RECORD_DEFAULT_TRIM),
        track=el.choice("track", RECORDING_TRACKS, RECORDING_DEFAULT_TRACK),
        channels=el.choice("channels", RECORDING_CHANNELS, RECORDING_DEFAULT_CHANNELS),
    )
    el.take("recordingConfigurationId")
    el.report_leftovers()
    return verb


def start_or_stop_verbs(el: Element) -> list[Verb]:
    """<Start>/<Stop>: each <Recording> noun becomes a verb, in order; other nouns Unsupported."""
    el.report_unknown_attributes()
    el.report_text()
    verbs: list[Verb] = []
    for child in el.children():
        noun = el.nested(child)
        if noun.name == "Recording":
            if el.name == "Start":
                verbs.append(_recording_noun(noun))
            else:
                name = noun.take("name")
                noun.report_unknown_attributes()
                verbs.append(StopRecording(name=name))
        elif noun.name in START_NOUNS:
            verbs.append(unsupported(f"{el.name}/{noun.name}", child, child))
        else:
            el.report_nested(child)
    if not verbs:
        el.report(codes.SCHEMA_VALIDATION_WARNING, f"<{el.name}> has no noun; skipped")
    return verbs
