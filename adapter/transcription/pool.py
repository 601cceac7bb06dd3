"""The bounded worker pool every transcription goes through: at most ``[transcription]
workers`` at once, whatever the engine, and never on the event loop (the local engine runs in
its threads, the server engine waits on a socket). A live call, a `<Record>` job or a short
utterance all call `TranscriptionPool.transcribe` and wait for their turn."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from adapter.transcription.engine import Transcript, TranscriptionEngine

__all__ = ["TranscriptionPool"]

log = logging.getLogger(__name__)


class TranscriptionPool:
    """`engine` behind a semaphore of `workers`."""

    def __init__(self, engine: TranscriptionEngine, workers: int = 1) -> None:
        self.engine = engine
        self._slots = asyncio.Semaphore(workers)

    async def transcribe(self, wav: Path) -> Transcript:
        """`engine.transcribe(wav)` once a worker is free (`TranscriptionUnavailable` passes)."""
        async with self._slots:
            started = time.monotonic()
            result = await self.engine.transcribe(wav)
        took = time.monotonic() - started
        log.info("transcription: %s (%.1f s of audio) in %.2f s by %s", wav.name,
                 result.duration, took, self.engine.name)
        return result

    async def close(self) -> None:
        await self.engine.close()
