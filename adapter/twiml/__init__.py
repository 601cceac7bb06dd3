"""TwiML: safe parsing, typed verbs and validation with Twilio's error codes."""

from adapter.twiml.findings import Finding, TwimlError
from adapter.twiml.parse import check_document, parse_document, unsupported_reached
from adapter.twiml.verbs import (
    Dial,
    DialTarget,
    Document,
    Gather,
    Hangup,
    Pause,
    Play,
    Record,
    Redirect,
    Reject,
    Say,
    StartRecording,
    StopRecording,
    Unsupported,
    Verb,
)

__all__ = [
    "Dial",
    "DialTarget",
    "Document",
    "Finding",
    "Gather",
    "Hangup",
    "Pause",
    "Play",
    "Record",
    "Redirect",
    "Reject",
    "Say",
    "StartRecording",
    "StopRecording",
    "TwimlError",
    "Unsupported",
    "Verb",
    "check_document",
    "parse_document",
    "unsupported_reached",
]
