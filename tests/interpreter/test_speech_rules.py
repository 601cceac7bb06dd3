"""The rules of a speech `<Gather>` that need no PBX: the silence that ends an utterance, voice
in a recorded utterance (espeak-ng speech against silence), the profanity filter, and
`gather_input` against a scripted call and engine (which operations run, the parameters)."""

from __future__ import annotations

import asyncio
import shutil
import wave
from collections import deque
from collections.abc import Coroutine
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar, cast

import pytest
from speech import speak
from twilio.twiml.voice_response import VoiceResponse

from adapter.interpreter.context import SessionContext
from adapter.interpreter.gather import gather_input
from adapter.interpreter.profanity import mask_profanity
from adapter.interpreter.speech import AUTO_SILENCE, has_voice, silence_seconds
from adapter.pbx.base import CallControl, RecordEnd, RecordResult, UtteranceRequest
from adapter.transcription.engine import Transcript
from adapter.twiml import Gather, parse_document

T = TypeVar("T")


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


# --- gather_input against a scripted call and engine ------------------------------------------

PROMPT = Path("/spool/prompt.wav")


class ScriptedCall:
    """Each record_utterance writes the next WAV of `utterances` ("voice", "silence") and ends
    as scripted (a key: FINISH_KEY with it); it takes `record_s` like a PBX; logs the calls."""

    def __init__(self, *utterances: str, voice: Path, record_s: float = 0.0,
                 pending: str = "") -> None:
        self.utterances = deque(utterances)
        self.pending = deque(pending)  # keys pressed between two operations
        self.voice = voice
        self.record_s = record_s
        self.log: list[str] = []
        self.requests: list[UtteranceRequest] = []

    async def play(self, path: Path) -> None:
        self.log.append(f"play {path.name}")

    def forget_keys(self) -> None:
        self.log.append("forget-keys")

    def pending_key(self) -> str | None:
        return self.pending.popleft() if self.pending else None

    async def play_until_key(self, path: Path) -> str | None:
        self.log.append(f"play-until-key {path.name}")
        return None

    async def wait_for_key(self, seconds: int) -> str | None:
        self.log.append(f"wait {seconds}")
        return None

    async def record_utterance(self, request: UtteranceRequest) -> RecordResult:
        self.requests.append(request)
        await asyncio.sleep(self.record_s)  # the PBX's recording takes time
        what = self.utterances.popleft() if self.utterances else "silence"
        heard, _, key = what.partition("+")
        request.path.parent.mkdir(parents=True, exist_ok=True)
        if heard == "voice":
            shutil.copy(self.voice, request.path)
        else:
            silent_wav(request.path, 1.0)
        self.log.append(f"record {what}")
        if key:
            return RecordResult(RecordEnd.FINISH_KEY, digit=key)
        return RecordResult(RecordEnd.SILENCE)


class Engine:
    def __init__(self, transcript: Transcript) -> None:
        self.transcript = transcript
        self.heard: list[Path] = []

    async def transcribe(self, wav: Path) -> Transcript:
        assert await asyncio.to_thread(wav.exists)
        self.heard.append(wav)
        return self.transcript


class Prompts:
    async def say(self, text: str, *, voice: str | None, language: str | None) -> Path:
        return PROMPT


async def send(command: Coroutine[Any, Any, T]) -> T:
    return await command


@pytest.fixture(scope="module")
def voice_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wav = tmp_path_factory.mktemp("voice") / "yes.wav"
    speak("Yes please.", wav, lead_s=0.2)
    return wav


async def run(verb: Gather, call: ScriptedCall, engine: Engine,
              tmp_path: Path) -> list[tuple[str, str]] | None:
    ctx = SimpleNamespace(prompts=Prompts(), config=SimpleNamespace(spool_dir_local=tmp_path),
                          transcriptions=SimpleNamespace(pool=engine))
    return await gather_input(cast(SessionContext, ctx), cast(CallControl, call), verb,
                              "http://app/voice", send=send, call_sid="CA1")


def speech_gather(*, say: bool = True, **attributes: object) -> Gather:
    response = VoiceResponse()
    verb = response.gather(action="/g", **attributes)
    if say:
        verb.say("Tell us")
    (parsed,) = parse_document(str(response).encode(), "text/xml").verbs
    assert isinstance(parsed, Gather)
    return parsed


async def test_speech_after_silent_utterances(tmp_path: Path, voice_wav: Path) -> None:
    call = ScriptedCall("silence", "silence", "voice", voice=voice_wav)
    engine = Engine(Transcript("Yes please.", 0.912345678, 1.0))
    params = await run(speech_gather(input="speech", speech_timeout="auto", timeout=30), call,
                       engine, tmp_path)
    assert params == [("SpeechResult", "Yes please."), ("Confidence", "0.91234568")]
    # input="speech": no key barges in, so the prompt is a plain play
    assert call.log == ["forget-keys", "play prompt.wav", "record silence", "record silence",
                        "record voice"]
    assert {(r.silence, r.max_length, r.keys) for r in call.requests} == {(AUTO_SILENCE, 60, "")}
    assert len(engine.heard) == 1 and not engine.heard[0].exists()  # deleted once heard


async def test_no_voice_until_the_timeout_is_no_input(tmp_path: Path, voice_wav: Path) -> None:
    call = ScriptedCall(voice=voice_wav, record_s=0.3)
    engine = Engine(Transcript("never", 0.9, 1.0))
    verb = speech_gather(input="speech", timeout=1, say=False)
    assert await run(verb, call, engine, tmp_path) is None
    assert 2 <= len(call.requests) <= 10 and engine.heard == []
    assert call.requests[0].silence == 1  # no speechTimeout: timeout


async def test_dtmf_speech_a_key_before_voice_is_digits(tmp_path: Path,
                                                         voice_wav: Path) -> None:
    call = ScriptedCall("silence+3", voice=voice_wav)
    params = await run(speech_gather(input="dtmf speech"), call,
                       Engine(Transcript("x", 0.9, 1.0)), tmp_path)
    assert params == [("Digits", "3")]
    assert call.log == ["forget-keys", "play-until-key prompt.wav", "record silence+3",
                        "wait 5"]
    assert call.requests[0].keys == "#*0123456789"


async def test_dtmf_speech_a_key_as_the_prompt_ended_is_digits(tmp_path: Path,
                                                                voice_wav: Path) -> None:
    """A key pressed between the prompt and the recording (the PBX dropped it; its event
    came): Digits, and no utterance is recorded."""
    call = ScriptedCall("voice", voice=voice_wav, pending="4")
    params = await run(speech_gather(input="dtmf speech"), call,
                       Engine(Transcript("x", 0.9, 1.0)), tmp_path)
    assert params == [("Digits", "4")]
    assert call.log == ["forget-keys", "play-until-key prompt.wav", "wait 5"]
    assert call.requests == []


async def test_dtmf_speech_voice_then_a_key_is_speech(tmp_path: Path, voice_wav: Path) -> None:
    call = ScriptedCall("voice+#", voice=voice_wav)
    params = await run(speech_gather(input="dtmf speech"), call,
                       Engine(Transcript("Yes please.", 0.5, 1.0)), tmp_path)
    assert params == [("SpeechResult", "Yes please."), ("Confidence", "0.50000000")]


@pytest.mark.parametrize(("profanity_filter", "text"), [(True, "Oh s***, yes"),
                                                         (False, "Oh shit, yes")])
async def test_profanity_filter(tmp_path: Path, voice_wav: Path, profanity_filter: bool,
                                text: str) -> None:
    params = await run(speech_gather(input="speech", profanity_filter=profanity_filter),
                       ScriptedCall("voice", voice=voice_wav),
                       Engine(Transcript(" Oh shit, yes ", None, 1.0)), tmp_path)
    assert params == [("SpeechResult", text), ("Confidence", "0.00000000")]


@pytest.mark.parametrize(("attributes", "expected"), [
    ({}, None),  # the engine made out nothing: no input, the next verb
    ({"action_on_empty_result": True}, []),  # the action, without SpeechResult
])
async def test_empty_text_is_no_input(tmp_path: Path, voice_wav: Path,
                                      attributes: dict[str, object],
                                      expected: list[tuple[str, str]] | None) -> None:
    params = await run(speech_gather(input="speech", **attributes),
                       ScriptedCall("voice", voice=voice_wav),
                       Engine(Transcript("  ", 0.1, 1.0)), tmp_path)
    assert params == expected
