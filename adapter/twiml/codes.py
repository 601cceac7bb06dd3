"""Twilio's numeric error and warning codes that TwiML parsing and validation can report.

Each code carries the title and log level printed in Twilio's Error and Warning Dictionary
(https://www.twilio.com/docs/api/errors/<code>). The level decides whether a finding stops the
document: Twilio logs ERROR-level codes when it cannot go on, and WARNING-level codes when it
ignores the offending value (using the documented default) and carries on. We do the same.
See docs/twilio-reference-notes.md for the sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
    "DOCUMENT_PARSE_FAILURE",
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
    "TwilioCode",
]


@dataclass(frozen=True, slots=True)
class TwilioCode:
    """One entry of Twilio's error dictionary: number, title and log level."""

    number: int
    title: str
    level: Literal["ERROR", "WARNING"]

    @property
    def fatal(self) -> bool:
        """ERROR-level codes stop the document; WARNING-level ones do not."""
        return self.level == "ERROR"


# Document level.
INVALID_URL_FORMAT = TwilioCode(11100, "Invalid URL format", "ERROR")
RESPONSE_BODY_TOO_LARGE = TwilioCode(11750, "TwiML response body too large", "ERROR")
DOCUMENT_PARSE_FAILURE = TwilioCode(12100, "Document parse failure", "ERROR")
ROOT_ELEMENT_NOT_RESPONSE = TwilioCode(12102, "The root element must be Response", "ERROR")
SCHEMA_VALIDATION_WARNING = TwilioCode(12200, "Schema validation warning", "WARNING")
INVALID_CONTENT_TYPE = TwilioCode(12300, "Invalid Content-Type", "ERROR")

# Callback URLs (Twilio lists these next to the <Dial> codes; the titles are generic).
RECORDING_STATUS_CALLBACK_URL_INVALID = TwilioCode(
    13256, "Invalid recordingStatusCallback URL", "WARNING"
)
TRANSCRIBE_CALLBACK_URL_INVALID = TwilioCode(13257, "Invalid transcribeCallback URL", "ERROR")

# <Play>
PLAY_INVALID_LOOP = TwilioCode(13410, "Play: Invalid loop value", "WARNING")
PLAY_INVALID_DIGITS = TwilioCode(13430, "Play: Invalid DTMF String", "WARNING")

# <Say>
SAY_INVALID_LOOP = TwilioCode(13510, "Say: Invalid loop value", "WARNING")
SAY_INVALID_TEXT = TwilioCode(13520, "Say: Invalid text", "WARNING")
SAY_TEXT_TOO_LONG = TwilioCode(13521, "<Say> element character limits exceeded", "WARNING")

# <Record>
RECORD_INVALID_METHOD = TwilioCode(13610, "Record: Invalid method value", "WARNING")
RECORD_INVALID_TIMEOUT = TwilioCode(13611, "Record: Invalid timeout value", "WARNING")
RECORD_INVALID_MAX_LENGTH = TwilioCode(13612, "Record: Invalid maxLength value", "WARNING")
RECORD_INVALID_FINISH_ON_KEY = TwilioCode(13613, "Record: Invalid finishOnKey value", "WARNING")
RECORD_INVALID_TRANSCRIBE = TwilioCode(13614, "Record: Invalid transcribe value", "WARNING")
RECORD_MAX_LENGTH_TOO_HIGH_FOR_TRANSCRIPTION = TwilioCode(
    13615, "Record: maxLength too high for transcription", "WARNING"
)
RECORD_INVALID_PLAY_BEEP = TwilioCode(13616, "Record: playBeep must be true or false", "WARNING")
RECORD_INVALID_STATUS_CALLBACK_EVENT = TwilioCode(
    13621, "Invalid 'recordingStatusCallbackEvent'", "ERROR"
)
RECORD_INVALID_TRIM = TwilioCode(13699, "Record: Invalid trim value", "WARNING")

# <Redirect>, <Pause>
REDIRECT_INVALID_METHOD = TwilioCode(13710, "Redirect: Invalid method value", "WARNING")
PAUSE_INVALID_LENGTH = TwilioCode(13910, "Pause: Invalid length value", "WARNING")

# <Dial>, <Number>, <Sip>
DIAL_INVALID_METHOD = TwilioCode(13210, "Dial: Invalid method value", "WARNING")
DIAL_INVALID_TIMEOUT = TwilioCode(13212, "Dial: Invalid timeout value", "WARNING")
DIAL_INVALID_HANGUP_ON_STAR = TwilioCode(13213, "Dial: Invalid hangupOnStar value", "WARNING")
DIAL_INVALID_CALLER_ID = TwilioCode(13214, "Dial: Invalid callerId value", "WARNING")
DIAL_INVALID_NESTED_ELEMENT = TwilioCode(13215, "Dial: Invalid nested element", "WARNING")
DIAL_INVALID_TIME_LIMIT = TwilioCode(13216, "Invalid timeLimit value", "WARNING")
DIAL_INVALID_RECORD = TwilioCode(13217, "Dial: Invalid record value", "WARNING")
DIAL_INVALID_ANSWER_ON_BRIDGE = TwilioCode(13219, "Dial: Invalid answerOnBridge value", "WARNING")
DIAL_NUMBER_INVALID_SEND_DIGITS = TwilioCode(
    13222, "Dial->Number: Invalid sendDigits value", "WARNING"
)
DIAL_INVALID_PHONE_NUMBER = TwilioCode(13223, "Dial: Invalid phone number format", "WARNING")
DIAL_SIP_INVALID_URI = TwilioCode(13243, "Dial->SIP: Invalid SIP URI", "WARNING")
