"""Twilio's numeric error and warning codes that TwiML parsing and validation can report.

Each code carries the title and log level printed in Twilio's Error and Warning Dictionary
(https://www.twilio.com/docs/api/errors/<code>). The level decides whether a finding stops the
document: Twilio logs ERROR-level codes when it cannot go on, and WARNING-level codes when it
ignores the offending value (using the documented default) and carries on. We do the same.
`DICTIONARY` holds those entries as data; each name below picks one out by its number.
See docs/twilio-reference-notes.md for the sources.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = [
    "DIAL_INVALID_ANSWER_ON_BRIDGE",
    "DIAL_INVALID_CALLER_ID",
    "DIAL_INVALID_HANGUP_ON_STAR",
    "DIAL_INVALID_METHOD",
    "DIAL_INVALID_NESTED_ELEMENT",
    "DIAL_INVALID_PHONE_NUMBER",
    "DIAL_INVALID_RECORD",
    "DIAL_INVALID_TIMEOUT",
    "DIAL_INVALID_TIME_LIMIT",
    "DIAL_NUMBER_INVALID_SEND_DIGITS",
    "DIAL_SIP_INVALID_URI",
    "DICTIONARY",
    "DOCUMENT_PARSE_FAILURE",
    "GATHER_INVALID_ACTION_ON_EMPTY_RESULT",
    "GATHER_INVALID_FINISH_ON_KEY",
    "GATHER_INVALID_LANGUAGE",
    "GATHER_INVALID_MAX_SPEECH_TIME",
    "GATHER_INVALID_METHOD",
    "GATHER_INVALID_NESTED_VERB",
    "GATHER_INVALID_NUM_DIGITS",
    "GATHER_INVALID_SPEECH_TIMEOUT",
    "GATHER_INVALID_TIMEOUT",
    "GATHER_SAY_INVALID_LOOP",
    "INVALID_CONTENT_TYPE",
    "INVALID_URL_FORMAT",
    "PAUSE_INVALID_LENGTH",
    "PLAY_INVALID_DIGITS",
    "PLAY_INVALID_LOOP",
    "RECORDING_STATUS_CALLBACK_URL_INVALID",
    "RECORD_INVALID_FINISH_ON_KEY",
    "RECORD_INVALID_MAX_LENGTH",
    "RECORD_INVALID_METHOD",
    "RECORD_INVALID_PLAY_BEEP",
    "RECORD_INVALID_STATUS_CALLBACK_EVENT",
    "RECORD_INVALID_TIMEOUT",
    "RECORD_INVALID_TRANSCRIBE",
    "RECORD_INVALID_TRIM",
    "RECORD_MAX_LENGTH_TOO_HIGH_FOR_TRANSCRIPTION",
    "REDIRECT_INVALID_METHOD",
    "RESPONSE_BODY_TOO_LARGE",
    "ROOT_ELEMENT_NOT_RESPONSE",
    "SAY_INVALID_LOOP",
    "SAY_INVALID_TEXT",
    "SAY_TEXT_TOO_LONG",
    "SCHEMA_VALIDATION_WARNING",
    "TRANSCRIBE_CALLBACK_URL_INVALID",
    "Level",
    "TwilioCode",
]

Level: TypeAlias = Literal["ERROR", "WARNING"]


@dataclass(frozen=True, slots=True)
class TwilioCode:
    """One entry of Twilio's error dictionary: number, title and log level."""

    number: int
    title: str
    level: Level

    @property
    def fatal(self) -> bool:
        """ERROR-level codes stop the document; WARNING-level ones do not."""
        return self.level == "ERROR"


# Twilio's Error and Warning Dictionary, as printed there: number -> (title, level).
DICTIONARY: Mapping[int, tuple[str, Level]] = {
    # Document level.
    11100: ("Invalid URL format", "ERROR"),
    11750: ("TwiML response body too large", "ERROR"),
    12100: ("Document parse failure", "ERROR"),
    12102: ("The root element must be Response", "ERROR"),
    12200: ("Schema validation warning", "WARNING"),
    12300: ("Invalid Content-Type", "ERROR"),
    # Callback URLs (Twilio lists these next to the <Dial> codes; the titles are generic).
    13256: ("Invalid recordingStatusCallback URL", "WARNING"),
    13257: ("Invalid transcribeCallback URL", "ERROR"),
    # <Gather>
    13310: ("Gather: Invalid finishOnKey value", "WARNING"),
    13312: ("Gather: Invalid method value", "WARNING"),
    13313: ("Gather: Invalid timeout value", "WARNING"),
    13314: ("Gather: Invalid numDigits value", "WARNING"),
    13320: ("Gather: Invalid nested verb", "WARNING"),
    13322: ("Gather->Say: Invalid loop value", "WARNING"),
    13327: ("Gather: Invalid speechTimeout value", "WARNING"),
    13328: ("Gather: Invalid maxSpeechTime value", "WARNING"),
    13331: ("Gather: Invalid language value", "WARNING"),
    13338: ("Gather: Invalid actionOnEmptyResult value", "ERROR"),
    # <Play>
    13410: ("Play: Invalid loop value", "WARNING"),
    13430: ("Play: Invalid DTMF String", "WARNING"),
    # <Say>
    13510: ("Say: Invalid loop value", "WARNING"),
    13520: ("Say: Invalid text", "WARNING"),
    13521: ("<Say> element character limits exceeded", "WARNING"),
    # <Record>
    13610: ("Record: Invalid method value", "WARNING"),
    13611: ("Record: Invalid timeout value", "WARNING"),
    13612: ("Record: Invalid maxLength value", "WARNING"),
    13613: ("Record: Invalid finishOnKey value", "WARNING"),
    13614: ("Record: Invalid transcribe value", "WARNING"),
    13615: ("Record: maxLength too high for transcription", "WARNING"),
    13616: ("Record: playBeep must be true or false", "WARNING"),
    13621: ("Invalid 'recordingStatusCallbackEvent'", "ERROR"),
    13699: ("Record: Invalid trim value", "WARNING"),
    # <Redirect>, <Pause>
    13710: ("Redirect: Invalid method value", "WARNING"),
    13910: ("Pause: Invalid length value", "WARNING"),
    # <Dial>, <Number>, <Sip>
    13210: ("Dial: Invalid method value", "WARNING"),
    13212: ("Dial: Invalid timeout value", "WARNING"),
    13213: ("Dial: Invalid hangupOnStar value", "WARNING"),
    13214: ("Dial: Invalid callerId value", "WARNING"),
    13215: ("Dial: Invalid nested element", "WARNING"),
    13216: ("Invalid timeLimit value", "WARNING"),
    13217: ("Dial: Invalid record value", "WARNING"),
    13219: ("Dial: Invalid answerOnBridge value", "WARNING"),
    13222: ("Dial->Number: Invalid sendDigits value", "WARNING"),
    13223: ("Dial: Invalid phone number format", "WARNING"),
    13243: ("Dial->SIP: Invalid SIP URI", "WARNING"),
}


def _code(number: int) -> TwilioCode:
    """The dictionary's entry for `number`."""
    title, level = DICTIONARY[number]
    return TwilioCode(number, title, level)


# The names validation uses, in the order of the dictionary.
INVALID_URL_FORMAT = _code(11100)
RESPONSE_BODY_TOO_LARGE = _code(11750)
DOCUMENT_PARSE_FAILURE = _code(12100)
ROOT_ELEMENT_NOT_RESPONSE = _code(12102)
SCHEMA_VALIDATION_WARNING = _code(12200)
INVALID_CONTENT_TYPE = _code(12300)

RECORDING_STATUS_CALLBACK_URL_INVALID = _code(13256)
TRANSCRIBE_CALLBACK_URL_INVALID = _code(13257)

GATHER_INVALID_FINISH_ON_KEY = _code(13310)
GATHER_INVALID_METHOD = _code(13312)
GATHER_INVALID_TIMEOUT = _code(13313)
GATHER_INVALID_NUM_DIGITS = _code(13314)
GATHER_INVALID_NESTED_VERB = _code(13320)
GATHER_SAY_INVALID_LOOP = _code(13322)
GATHER_INVALID_SPEECH_TIMEOUT = _code(13327)
GATHER_INVALID_MAX_SPEECH_TIME = _code(13328)
GATHER_INVALID_LANGUAGE = _code(13331)
GATHER_INVALID_ACTION_ON_EMPTY_RESULT = _code(13338)

PLAY_INVALID_LOOP = _code(13410)
PLAY_INVALID_DIGITS = _code(13430)

SAY_INVALID_LOOP = _code(13510)
SAY_INVALID_TEXT = _code(13520)
SAY_TEXT_TOO_LONG = _code(13521)

RECORD_INVALID_METHOD = _code(13610)
RECORD_INVALID_TIMEOUT = _code(13611)
RECORD_INVALID_MAX_LENGTH = _code(13612)
RECORD_INVALID_FINISH_ON_KEY = _code(13613)
RECORD_INVALID_TRANSCRIBE = _code(13614)
RECORD_MAX_LENGTH_TOO_HIGH_FOR_TRANSCRIPTION = _code(13615)
RECORD_INVALID_PLAY_BEEP = _code(13616)
RECORD_INVALID_STATUS_CALLBACK_EVENT = _code(13621)
RECORD_INVALID_TRIM = _code(13699)

REDIRECT_INVALID_METHOD = _code(13710)
PAUSE_INVALID_LENGTH = _code(13910)

DIAL_INVALID_METHOD = _code(13210)
DIAL_INVALID_TIMEOUT = _code(13212)
DIAL_INVALID_HANGUP_ON_STAR = _code(13213)
DIAL_INVALID_CALLER_ID = _code(13214)
DIAL_INVALID_NESTED_ELEMENT = _code(13215)
DIAL_INVALID_TIME_LIMIT = _code(13216)
DIAL_INVALID_RECORD = _code(13217)
DIAL_INVALID_ANSWER_ON_BRIDGE = _code(13219)
DIAL_NUMBER_INVALID_SEND_DIGITS = _code(13222)
DIAL_INVALID_PHONE_NUMBER = _code(13223)
DIAL_SIP_INVALID_URI = _code(13243)
