"""Offline transcription of recordings (`<Record transcribe>`, issue 12; docs/transcription.md).

`engine` (the interface: a WAV in, a `Transcript` out, `TranscriptionUnavailable`),
`local_whisper` (faster-whisper, the default), `openai_compatible` (a server the site runs),
`factory` (the configured one), `pool` (at most N at once, off the event loop).
"""

from adapter.transcription.engine import (
    Transcript,
    TranscriptionEngine,
    TranscriptionUnavailable,
)
from adapter.transcription.factory import make_engine
from adapter.transcription.pool import TranscriptionPool

__all__ = [
    "Transcript",
    "TranscriptionEngine",
    "TranscriptionPool",
    "TranscriptionUnavailable",
    "make_engine",
]
