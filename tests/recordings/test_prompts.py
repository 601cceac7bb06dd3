"""`<Say>` rendered offline with espeak-ng into 8 kHz WAV, cached; voice selection."""

from __future__ import annotations

from pathlib import Path

from adapter.prompts import PromptCache, espeak_voice
from adapter.recordings import media, silence


def test_language_and_voice_pick_an_espeak_voice() -> None:
    assert espeak_voice(None, "en-GB") == "en-gb"
    assert espeak_voice("woman", "en-US") == "en-us+f3"
    assert espeak_voice("Polly.Joanna", "fr-FR") in ("fr", "fr-fr")
    assert espeak_voice(None, "xx-YY") == "en-us"  # unknown language: the default voice


async def test_say_renders_once_and_is_cached(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path / "prompts")
    first = await cache.say("Hello caller.", voice=None, language="en-US")
    info = media.wav_info(first)
    assert (info.sample_rate, info.channels, info.sample_width) == (8000, 1, 2)
    assert 0.5 < info.duration < 3
    assert not silence.is_silent(first)
    stamp = first.stat().st_mtime_ns
    again = await cache.say("Hello caller.", voice=None, language="en-US")
    assert again == first and again.stat().st_mtime_ns == stamp  # not rendered again
    other = await cache.say("Hello caller.", voice="woman", language="en-US")
    assert other != first
    await cache.close()


async def test_play_refuses_metadata_and_link_local_targets(tmp_path: Path) -> None:
    """An IP literal never reaches the DNS resolver: the host itself is checked (11210)."""
    import pytest

    from adapter.errors import TwilioError

    cache = PromptCache(tmp_path / "prompts")
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/x.wav",
                "http://0.0.0.0/x.wav"):
        with pytest.raises(TwilioError) as info:
            await cache.play(url)
        assert info.value.code == 11210, url
    await cache.close()
