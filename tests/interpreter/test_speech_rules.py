"""The rules of a speech `<Gather>` that need no PBX: the silence that ends an utterance, voice
in a recorded utterance (espeak-ng speech against silence), and the profanity filter."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest
from speech import speak
from twilio.twiml.voice_response import VoiceResponse

from adapter.interpreter.profanity import mask_profanity
from adapter.interpreter.speech import AUTO_SILENCE, has_voice, silence_seconds
from adapter.twiml import Gather, parse_document


def gather(**attributes: object) -> Gather:
    response = VoiceResponse()
    response.gather(input="speech", **attributes)
    (verb,) = parse_document(str(response).encode(), "text/xml").verbs
    assert isinstance(verb, Gather)
    return verb


@pytest.mark.parametrize(("attributes", "seconds"), [
    ({}, 5),  # no speechTimeout: timeout (its default, 5)
    ({"timeout": 3}, 3),
    ({"speech_timeout": "auto", "timeout": 8}, AUTO_SILENCE),
    ({"speech_timeout": "2", "timeout": 8}, 2),
    ({"speech_timeout": "soon", "timeout": 4}, 4),  # 13327, then timeout
])
def test_the_silence_that_ends_an_utterance(attributes: dict[str, object], seconds: int) -> None:
    assert silence_seconds(gather(**attributes)) == seconds


def silent_wav(path: Path, seconds: float, level: int = 0) -> Path:
    samples = int(8000 * seconds)
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(level.to_bytes(2, "little", signed=True) * samples)
    return path


def test_speech_has_voice_and_silence_has_none(tmp_path: Path) -> None:
    speech = tmp_path / "speech.wav"
    speak("Yes please.", speech, lead_s=1.0)
    assert has_voice(speech)
    assert not has_voice(silent_wav(tmp_path / "silence.wav", 2.0))
    assert not has_voice(silent_wav(tmp_path / "hiss.wav", 2.0, level=40))  # comfort noise level


def test_an_empty_or_broken_file_has_no_voice(tmp_path: Path) -> None:
    assert not has_voice(silent_wav(tmp_path / "empty.wav", 0.0))  # FreeSWITCH's 44 bytes
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF")
    assert not has_voice(broken)
    assert not has_voice(tmp_path / "absent.wav")


@pytest.mark.parametrize(("text", "masked"), [
    ("What the fuck is this shit", "What the f*** is this s***"),
    ("Damn, it is FUCKING broken!", "D***, it is F****** broken!"),
    ("Assess the class of bitches", "Assess the class of b******"),
    ("Please call me back", "Please call me back"),
])
def test_profanity_is_masked_after_the_first_letter(text: str, masked: str) -> None:
    assert mask_profanity(text) == masked
