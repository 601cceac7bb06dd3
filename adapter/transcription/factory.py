"""The configured engine (``[transcription] engine``), and why it cannot run, said once at start."""

from __future__ import annotations

import logging

from adapter.config import TranscriptionConfig
from adapter.transcription.engine import TranscriptionEngine
from adapter.transcription.local_whisper import LocalWhisperEngine, local_engine_problem
from adapter.transcription.openai_compatible import OpenAiCompatibleEngine

__all__ = ["make_engine"]

log = logging.getLogger(__name__)


def make_engine(config: TranscriptionConfig) -> TranscriptionEngine:
    """The engine `config` names. For the local one, a missing faster-whisper or model is
    logged here (one WARNING); the adapter runs on and its transcriptions are ``failed``."""
    if config.engine == "openai":
        log.info("transcription: engine openai at %s, model %s", config.url,
                 config.model or "whisper-1")
        return OpenAiCompatibleEngine(config.url, config.model, api_key=config.api_key,
                                      timeout=config.timeout)
    problem = local_engine_problem(config.model)
    if problem is None:
        log.info("transcription: engine local (faster-whisper), model %s, %d worker(s)",
                 config.model or "tiny.en (packaged)", config.workers)
    else:
        log.warning("transcription: engine local unavailable: %s; <Record transcribe> "
                    "recordings are kept and their transcriptions fail", problem)
    return LocalWhisperEngine(config.model, workers=config.workers,
                              cpu_threads=config.cpu_threads)
