"""The transcription engines on real speech (espeak-ng at 8 kHz): the local faster-whisper
engine with the packaged tiny.en, the OpenAI-compatible engine against a server speaking that
protocol, and how each fails."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from speech import MAX_WER, SENTENCES, corpus_wer, speak, word_error_rate
from transcription_server import transcription_server

from adapter.config import TranscriptionConfig
from adapter.transcription import (
    TranscriptionPool,
    TranscriptionUnavailable,
    make_engine,
)
from adapter.transcription.local_whisper import LocalWhisperEngine, local_engine_problem
from adapter.transcription.openai_compatible import OpenAiCompatibleEngine


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("speech")
    out = []
    for n, text in enumerate(SENTENCES):
        wav = folder / f"s{n}.wav"
        speak(text, wav)
        out.append((text, wav))
    return out


async def test_local_engine_transcribes_telephone_speech(spoken: list[tuple[str, Path]]) -> None:
    engine = LocalWhisperEngine()
    try:
        results = [(text, await engine.transcribe(wav)) for text, wav in spoken]
    finally:
        await engine.close()
    for text, result in results:
        print(f"{word_error_rate(text, result.text):5.0%}  {text!r} -> {result.text!r}")
        assert result.confidence is not None and 0 < result.confidence <= 1
        assert result.duration > 1.5
    wer = corpus_wer([(text, result.text) for text, result in results])
    print(f"local tiny.en WER {wer:.0%}")
    assert wer <= MAX_WER


async def test_local_engine_keeps_the_event_loop_free(spoken: list[tuple[str, Path]]) -> None:
    """While a transcription runs, the loop keeps ticking (the work is in the engine's
    thread)."""
    engine = LocalWhisperEngine()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.ensure_future(tick())
    try:
        await engine.transcribe(spoken[1][1])
    finally:
        ticker.cancel()
        await engine.close()
    assert ticks > 5


async def test_missing_model_folder_is_unavailable(tmp_path: Path,
                                                   spoken: list[tuple[str, Path]]) -> None:
    missing = str(tmp_path / "no-model")
    assert "lacks model.bin" in (local_engine_problem(missing) or "")
    engine = LocalWhisperEngine(missing)
    with pytest.raises(TranscriptionUnavailable):
        await engine.transcribe(spoken[0][1])
    await engine.close()


async def test_openai_compatible_engine_speaks_the_protocol(
        spoken: list[tuple[str, Path]]) -> None:
    async with transcription_server(api_key="sk-local-123") as server:
        pool = TranscriptionPool(make_engine(TranscriptionConfig(
            engine="openai", url=server.url, model="tiny.en", api_key="sk-local-123")))
        try:
            text, wav = spoken[0]
            result = await pool.transcribe(wav)
        finally:
            await pool.close()
    assert word_error_rate(text, result.text) <= MAX_WER, result.text
    assert server.requests == [{"model": "tiny.en", "language": "en",
                                "response_format": "json"}]


async def test_openai_compatible_engine_failures(spoken: list[tuple[str, Path]]) -> None:
    wav = spoken[0][1]
    async with transcription_server(broken=True) as server:
        engine = OpenAiCompatibleEngine(server.url, "tiny.en")
        with pytest.raises(TranscriptionUnavailable, match="answered 500"):
            await engine.transcribe(wav)
        await engine.close()
    async with transcription_server(api_key="right") as server:
        engine = OpenAiCompatibleEngine(server.url, "tiny.en", api_key="wrong")
        with pytest.raises(TranscriptionUnavailable, match="answered 401"):
            await engine.transcribe(wav)
        await engine.close()
    # Nobody listens there any more.
    engine = OpenAiCompatibleEngine(server.url, "tiny.en", timeout=5)
    with pytest.raises(TranscriptionUnavailable, match="unreachable"):
        await engine.transcribe(wav)
    await engine.close()
