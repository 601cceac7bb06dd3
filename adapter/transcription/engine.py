"""What a transcription engine is: a WAV file in, text (and how sure the engine is) out.

The one interface every engine implements (`TranscriptionEngine`), for `<Record transcribe>`
(`adapter.transcription.jobs`) and for a short utterance from a live call alike. Engines are
picked by ``[transcription] engine`` (`adapter.transcription.factory`). English only: Twilio
transcribes `<Record>` in American English.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from adapter.errors import AdapterError

__all__ = ["LANGUAGE", "Transcript", "TranscriptionEngine", "TranscriptionUnavailable"]

# Twilio's <Record> transcription is American English; Whisper's English models take "en".
LANGUAGE = "en"


@dataclass(frozen=True, slots=True)
class Transcript:
    """An engine's result: the text (may be empty for speech it could not make out), its
    confidence from 0 to 1 (None when the engine reports none) and the audio's length."""

    text: str
    confidence: float | None
    duration: float


class TranscriptionUnavailable(AdapterError):
    """The engine cannot transcribe: its package or model is missing, its server is down or
    answered with an error. The transcription is then ``failed``, as Twilio reports one."""


class TranscriptionEngine(Protocol):
    """An engine; `transcribe` never blocks the event loop (heavy work runs in threads)."""

    name: str

    async def transcribe(self, wav: Path) -> Transcript:
        """The text spoken in `wav`; `TranscriptionUnavailable` when it cannot be had."""
        ...

    async def close(self) -> None:
        """Release threads, sessions and models."""
        ...
