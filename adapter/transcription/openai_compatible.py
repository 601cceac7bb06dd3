"""An engine the site runs itself: any server speaking OpenAI's ``/v1/audio/transcriptions``
(whisper.cpp's server, faster-whisper-server, vLLM...), reached with aiohttp.

One multipart POST per recording (``file``, ``model``, ``language``, ``response_format=json``),
with ``Authorization: Bearer <api_key>`` when a key is set, bounded by ``[transcription]
timeout``. The URL is the operator's configuration, never a value from TwiML. A refused
connection, a timeout, a non-2xx answer or a body without ``text``: `TranscriptionUnavailable`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Final

import aiohttp

from adapter.recordings.media import MediaError, wav_info
from adapter.transcription.engine import LANGUAGE, Transcript, TranscriptionUnavailable

__all__ = ["TRANSCRIPTIONS_PATH", "OpenAiCompatibleEngine"]

log = logging.getLogger(__name__)

TRANSCRIPTIONS_PATH: Final = "/v1/audio/transcriptions"
_MAX_REPLY_BYTES: Final = 1 << 20


class OpenAiCompatibleEngine:
    """POSTs each WAV to ``<url>/v1/audio/transcriptions``."""

    name = "openai"

    def __init__(self, url: str, model: str, *, api_key: str = "", timeout: float = 60.0) -> None:
        self._endpoint = url.rstrip("/") + TRANSCRIPTIONS_PATH
        self._model = model or "whisper-1"
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def transcribe(self, wav: Path) -> Transcript:
        try:
            info = await asyncio.to_thread(wav_info, wav)
            body = await asyncio.to_thread(wav.read_bytes)
        except (OSError, MediaError) as exc:
            raise TranscriptionUnavailable(f"{wav.name} cannot be read: {exc}") from exc
        form = aiohttp.FormData()
        form.add_field("file", body, filename=wav.name, content_type="audio/wav")
        form.add_field("model", self._model)
        form.add_field("language", LANGUAGE)
        form.add_field("response_format", "json")
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(self._endpoint, data=form, headers=headers) as reply:
                raw = await reply.content.read(_MAX_REPLY_BYTES)
                if reply.status // 100 != 2:
                    raise TranscriptionUnavailable(
                        f"{self._endpoint} answered {reply.status}: {raw[:200]!r}")
                try:
                    text = _text_of(raw)
                except ValueError as exc:
                    raise TranscriptionUnavailable(f"{self._endpoint}: {exc}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TranscriptionUnavailable(f"{self._endpoint} unreachable: {exc!r}") from exc
        return Transcript(text.strip(), None, info.duration)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _text_of(raw: bytes) -> str:
    """The ``text`` of a ``response_format=json`` reply; ValueError when there is none."""
    try:
        reply = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"the reply is not JSON ({exc})") from None
    if not isinstance(reply, dict) or not isinstance(reply.get("text"), str):
        raise ValueError("the reply has no text")
    return str(reply["text"])
