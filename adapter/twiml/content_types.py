"""What Twilio does with a webhook response, decided by its Content-Type.

Twilio documents (TwiML Voice: Your Response): text/xml, application/xml and text/html are
TwiML; "various audio types" (the ones <Play> accepts) are played, then the call hangs up;
text/plain is read out loud, then the call hangs up. Anything else, or no Content-Type at
all, is error 12300.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["AUDIO_TYPES", "TEXT_TYPES", "TWIML_TYPES", "BodyKind", "MediaType", "classify"]

TWIML_TYPES = frozenset({"text/xml", "application/xml", "text/html"})
TEXT_TYPES = frozenset({"text/plain"})
# The MIME types Twilio lists for <Play> (twilio.com/docs/voice/twiml/play).
AUDIO_TYPES = frozenset(
    {
        "audio/mpeg",
        "audio/wav",
        "audio/wave",
        "audio/x-wav",
        "audio/aiff",
        "audio/x-aifc",
        "audio/x-aiff",
        "audio/x-gsm",
        "audio/gsm",
        "audio/ulaw",
    }
)


class BodyKind(enum.Enum):
    """How a response body is to be used."""

    TWIML = "twiml"
    AUDIO = "audio"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class MediaType:
    """A parsed Content-Type: its kind, lower-cased type/subtype and charset parameter."""

    kind: BodyKind
    mime: str
    charset: str | None


@lru_cache(maxsize=64)
def classify(content_type: str | None) -> MediaType | None:
    """The MediaType of a Content-Type header value, or None when Twilio would refuse it (the
    last few remembered: an app answers with one or two header values, and a MediaType is
    immutable)."""
    if content_type is None:
        return None
    mime, *params = content_type.split(";")
    mime = mime.strip().lower()
    charset: str | None = None
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"') or None
    if mime in TWIML_TYPES:
        return MediaType(BodyKind.TWIML, mime, charset)
    if mime in TEXT_TYPES:
        return MediaType(BodyKind.TEXT, mime, charset)
    if mime in AUDIO_TYPES:
        return MediaType(BodyKind.AUDIO, mime, charset)
    return None
