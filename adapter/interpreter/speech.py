"""`<Gather input="speech">` (and ``dtmf speech``): hear the caller's utterance and recognise it.

The PBX records one utterance at a time (`CallControl.record_utterance`): it ends after the
speech timeout of silence, a key (``dtmf speech`` only) or ``maxSpeechTime``. Both PBXs count
that silence from the start of the recording, so a caller who has not spoken yet ends it too:
the adapter then looks for voice in the file (`has_voice`) and listens again until ``timeout``
seconds have passed without speech (Twilio's ``timeout``: how long it waits for the caller to
start). An utterance with voice goes to the transcription engine (off the event loop, through
the service's `TranscriptionPool`); its text is ``SpeechResult``, its confidence ``Confidence``.

Choices where Twilio's behaviour cannot be copied:

- ``speechTimeout="auto"`` ends the utterance after `AUTO_SILENCE` s of silence (Twilio stops
  "at a natural pause", a length it does not publish); no ``speechTimeout`` uses ``timeout``.
- Speech cannot stop the prompts (neither PBX reports voice during a playback): the nested
  ``<Say>``/``<Play>`` play to their end, and only a key stops them (``dtmf speech``).
- The engine knows English only: a ``language`` other than ``en-*`` is not recognised (a
  warning; the gather has no speech input), and ``hints``, ``speechModel``, ``enhanced`` change
  nothing. A failing engine is logged as an error and the gather has no speech input, as a
  Twilio recognition failure leaves the call to the next verb.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import sys
import wave
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from adapter import twiml
from adapter.interpreter.context import SessionContext
from adapter.interpreter.profanity import mask_profanity
from adapter.pbx.base import CallControl, CallGone, RecordEnd, UtteranceRequest
from adapter.transcription.engine import TranscriptionUnavailable

__all__ = ["AUTO_SILENCE", "Heard", "Send", "has_voice", "hear", "silence_seconds"]

log = logging.getLogger(__name__)

T = TypeVar("T")

AUTO_SILENCE = 1  # seconds of silence that end an utterance with speechTimeout="auto"
# Voice in a recorded utterance: a 20 ms frame whose mean absolute sample is above VOICE_LEVEL
# (Asterisk's default silence threshold is 256, FreeSWITCH's record uses 200 here), for at
# least VOICE_FRAMES frames (200 ms) in all; comfort noise and digital silence stay far below.
VOICE_LEVEL = 300
VOICE_FRAMES = 10


class Send(Protocol):
    """How a PBX command of the running document is sent (`CallSession._pbx`)."""

    def __call__(self, command: Coroutine[Any, Any, T], /) -> Awaitable[T]: ...


@dataclass(frozen=True, slots=True)
class Heard:
    """What a speech `<Gather>` got: the key that started the caller's digits (``dtmf
    speech``), or the recognised text and its confidence (0 to 1)."""

    key: str | None = None
    text: str = ""
    confidence: float = 0.0


def silence_seconds(verb: twiml.Gather) -> int:
    """The seconds of silence after speech that end the utterance."""
    if verb.speech_timeout is None:
        return verb.timeout
    if verb.speech_timeout == "auto":
        return AUTO_SILENCE
    return int(verb.speech_timeout)


def has_voice(wav: Path) -> bool:
    """Whether the 16-bit mono WAV `wav` holds voice (`VOICE_LEVEL`, `VOICE_FRAMES`)."""
    try:
        with wave.open(str(wav), "rb") as reader:
            if reader.getsampwidth() != 2:
                return True  # not ours to judge: let the engine listen
            frame = max(reader.getframerate() // 50, 1) * reader.getnchannels()
            samples = array.array("h", reader.readframes(reader.getnframes()))
    except (OSError, EOFError, wave.Error):
        return False
    if sys.byteorder == "big":
        samples.byteswap()
    loud = 0
    for start in range(0, len(samples) - frame + 1, frame):
        chunk = samples[start:start + frame]
        if sum(abs(s) for s in chunk) > VOICE_LEVEL * frame:
            loud += 1
            if loud >= VOICE_FRAMES:
                return True
    return False


async def hear(ctx: SessionContext, call: CallControl, verb: twiml.Gather, path: Path, *,
               send: Send, call_sid: str, keys: str) -> Heard | None:
    """Listen (a key of `keys` wins) and recognise; None: no input (or none recognised)."""
    try:
        voiced = await _listen(call, verb, path, send=send, keys=keys, call_sid=call_sid)
        if isinstance(voiced, str):
            return Heard(key=voiced)
        if not voiced:
            return None
        return await _recognise(ctx, verb, path, call_sid)
    finally:
        with contextlib.suppress(OSError):
            await asyncio.to_thread(path.unlink, missing_ok=True)


async def _listen(call: CallControl, verb: twiml.Gather, path: Path, *, send: Send,
                  keys: str, call_sid: str) -> str | bool:
    """Record until an utterance with voice (True; a key that ended it is dropped: the caller
    spoke first), a key before any voice (that key), or `timeout` seconds without voice, a
    hang-up or a failed recording (False)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + verb.timeout
    request = UtteranceRequest(path, silence=silence_seconds(verb),
                               max_length=verb.max_speech_time, keys=keys)
    while True:
        if keys and (key := call.pending_key()) is not None:
            return key  # pressed between two recordings
        result = await send(call.record_utterance(request))
        if result.end is RecordEnd.HANGUP:  # as a hang-up during keys: no action request
            raise CallGone(f"the caller hung up during <Gather> speech ({result.detail})")
        if result.end is RecordEnd.ERROR:
            log.error("call %s: <Gather> speech: the PBX could not record: %s; no speech input",
                      call_sid, result.detail)
            return False
        if await asyncio.to_thread(has_voice, path):
            return True  # spoken first: a key after the speech does not replace it
        if result.end is RecordEnd.FINISH_KEY and result.digit:
            return str(result.digit)
        if loop.time() >= deadline:
            return False


async def _recognise(ctx: SessionContext, verb: twiml.Gather, path: Path,
                     call_sid: str) -> Heard | None:
    if not verb.language.lower().startswith("en-"):
        log.warning("call %s: <Gather> language %s: the transcription engine recognises "
                    "English only; the speech is not recognised", call_sid, verb.language)
        return None
    if ctx.transcriptions is None:
        log.error("call %s: <Gather> speech: no transcription engine runs; no speech input",
                  call_sid)
        return None
    try:
        transcript = await ctx.transcriptions.pool.transcribe(path)
    except TranscriptionUnavailable as exc:
        log.error("call %s: <Gather> speech recognition failed: %s; no speech input",
                  call_sid, exc)
        return None
    text = transcript.text.strip()
    if not text:
        return None
    if verb.profanity_filter:
        text = mask_profanity(text)
    confidence = min(max(transcript.confidence or 0.0, 0.0), 1.0)
    log.info("call %s: <Gather> heard %r (confidence %.2f)", call_sid, text, confidence)
    return Heard(text=text, confidence=confidence)
