"""`<Gather input="speech">` and ``"dtmf speech"`` on a real Asterisk 22 and a real FreeSWITCH
1.10.12: the same TwiML (the twilio SDK's `VoiceResponse`), the same espeak-ng caller, the same
signed action requests (checked with `RequestValidator`), recognised by the packaged tiny.en.

The caller's voice (`call_playing`) starts with seconds of silence, so the adapter's prompt has
ended and it is listening when the speech comes; a `Keys` caller presses keys at given times
from the adapter's answer (or from when the prompt starts playing)."""

from __future__ import annotations

import asyncio
import logging

import pbx_rigs
import pytest
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN
from gather_menus import serve_menu, signed
from pbx_rigs import Keys, Rig, finished, voices
from speech import MAX_WER, SENTENCES, speak, word_error_rate
from transcription_server import transcription_server
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import TwimlApp

from adapter.recordings import layout
from adapter.transcription import TranscriptionPool
from adapter.transcription.openai_compatible import OpenAiCompatibleEngine

pbx, rig = pbx_rigs.pbx, pbx_rigs.rig  # the shared suites' fixtures

PROMPT = "Please tell us why you are calling."
LEAD_S = 4.0  # silence before the caller speaks: the prompt plays meanwhile


def speech_menu(app: TwimlApp, *, prompt: str | None = PROMPT, **gather: object) -> None:
    """/voice: a <Gather> (with a <Say> prompt), then a <Redirect> to /next (no input); the
    action /g redirects to /after, so the test sees its TwiML run."""
    response = VoiceResponse()
    verb = response.gather(**gather)
    if prompt:
        verb.say(prompt)
    serve_menu(app, response)


async def say_sentence(rig: Rig, text: str, name: str) -> None:
    wav = voices(rig) / f"{name}.wav"
    await asyncio.to_thread(speak, text, wav, lead_s=LEAD_S)
    await rig.call_speaking(wav)


async def test_speech_result_and_confidence(rig: Rig, app: TwimlApp) -> None:
    speech_menu(app, input="speech", action="/g", speech_timeout="auto", timeout=10)
    sentence = SENTENCES[0]
    await say_sentence(rig, sentence, "cancel")
    done = signed(await app.next_request("/g", within=120))
    signed(await app.next_request("/after"))  # the action's TwiML ran
    await finished(rig)
    heard = done.params["SpeechResult"]
    wer = word_error_rate(sentence, heard)
    print(f"\nsaid {sentence!r}\nheard {heard!r}: WER {wer:.0%}, "
          f"Confidence {done.params['Confidence']}")
    assert wer <= MAX_WER, (heard, wer)
    assert 0.0 < float(done.params["Confidence"]) <= 1.0
    assert "Digits" not in done.params
    assert done.method == "POST" and done.params["CallStatus"] == "in-progress"
    assert app.received("/next") == []


async def test_dtmf_speech_a_key_in_the_prompt_wins(rig: Rig, app: TwimlApp) -> None:
    """``dtmf speech``: the key cuts the prompt (looped 10 times) and the input is Digits."""
    response = VoiceResponse()
    response.gather(input="dtmf speech", action="/g", num_digits=1).say(PROMPT, loop=10)
    response.redirect("/next")
    app.answer("/voice", response)
    app.answer("/g", VoiceResponse())
    app.answer("/next", VoiceResponse())
    await rig.call_pressing(Keys(lead_s=1, digits="7", on_prompt=True))
    done = signed(await app.next_request("/g", within=60))
    await finished(rig)
    assert done.params["Digits"] == "7"
    assert "SpeechResult" not in done.params and "Confidence" not in done.params
    assert app.received("/next") == []


async def test_dtmf_speech_keys_instead_of_speaking(rig: Rig, app: TwimlApp) -> None:
    """No prompt: the adapter is listening for speech when the keys come; the first ends the
    listening, the second is collected as with input="dtmf"."""
    speech_menu(app, prompt=None, input="dtmf speech", action="/g", num_digits=2, timeout=8)
    await rig.call_pressing(Keys(lead_s=3, digits="4W2"))
    done = signed(await app.next_request("/g", within=60))
    await finished(rig)
    assert done.params["Digits"] == "42"
    assert "SpeechResult" not in done.params
    assert app.received("/next") == []


async def test_silence_runs_the_next_verb(rig: Rig, app: TwimlApp,
                                          caplog: pytest.LogCaptureFixture) -> None:
    """No voice in the utterances: the engine is never asked; after `timeout` the next verb."""
    speech_menu(app, prompt=None, input="speech", action="/g", timeout=3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with caplog.at_level(logging.INFO, logger="adapter.transcription.pool"):
        await rig.call_pressing(Keys(lead_s=1, digits="", silence_s=30))
        signed(await app.next_request("/next", within=60))
    waited = loop.time() - started
    await finished(rig)
    assert app.received("/g") == []
    assert waited >= 3, waited  # at least the timeout without speech
    assert [r for r in caplog.records if r.name == "adapter.transcription.pool"] == []


async def test_action_on_empty_result_without_speech(rig: Rig, app: TwimlApp) -> None:
    speech_menu(app, prompt=None, input="speech", action="/g", timeout=2,
                action_on_empty_result=True)
    await rig.call_pressing(Keys(lead_s=1, digits="", silence_s=30))
    done = signed(await app.next_request("/g", within=60))
    await finished(rig)
    assert "SpeechResult" not in done.params and "Digits" not in done.params
    assert app.received("/next") == []


async def test_a_failing_engine_is_logged_and_runs_the_next_verb(
        rig: Rig, app: TwimlApp, caplog: pytest.LogCaptureFixture) -> None:
    transcriptions = rig.adapter.transcriptions
    assert transcriptions is not None
    async with transcription_server(broken=True) as server:
        transcriptions.pool = TranscriptionPool(OpenAiCompatibleEngine(server.url, "tiny.en"))
        speech_menu(app, input="speech", action="/g", speech_timeout="auto", timeout=10)
        with caplog.at_level(logging.ERROR, logger="adapter.interpreter.speech"):
            await say_sentence(rig, SENTENCES[1], "broken")
            signed(await app.next_request("/next", within=120))
    await finished(rig)
    assert app.received("/g") == []
    assert any("speech recognition failed" in r.getMessage() for r in caplog.records)


async def test_dtmf_speech_speaking_gives_speech_even_with_a_key_after_it(
        rig: Rig, app: TwimlApp) -> None:
    """``dtmf speech`` and the caller speaks first: SpeechResult (on Asterisk the test caller
    presses # right after its speech; the speech came first and wins)."""
    speech_menu(app, input="dtmf speech", action="/g", speech_timeout="1", timeout=10)
    sentence = SENTENCES[0]
    await say_sentence(rig, sentence, "callback")
    done = signed(await app.next_request("/g", within=120))
    await finished(rig)
    heard = done.params["SpeechResult"]
    wer = word_error_rate(sentence, heard)
    print(f"\nsaid {sentence!r}\nheard {heard!r}: WER {wer:.0%}")
    assert wer <= MAX_WER, (heard, wer)
    assert "Digits" not in done.params


async def test_a_language_the_engine_lacks_is_not_recognised(
        rig: Rig, app: TwimlApp, caplog: pytest.LogCaptureFixture) -> None:
    """language="fr-FR": the English engine does not guess; a warning, and the next verb."""
    speech_menu(app, input="speech", action="/g", speech_timeout="auto", timeout=10,
                language="fr-FR")
    with caplog.at_level(logging.WARNING, logger="adapter.interpreter.speech"):
        await say_sentence(rig, SENTENCES[2], "french")
        signed(await app.next_request("/next", within=120))
    await finished(rig)
    assert app.received("/g") == []
    assert any("fr-FR" in r.getMessage() for r in caplog.records)


async def test_a_rest_redirect_cuts_the_listening(rig: Rig, app: TwimlApp) -> None:
    """REST ``Twiml`` while the adapter listens for speech: the new TwiML runs at once, no
    action request, and no utterance file is left in the spool."""
    speech_menu(app, prompt=None, input="speech", action="/g", timeout=30, speech_timeout="5")
    await rig.call_pressing(Keys(lead_s=1, digits="", silence_s=60))
    voice = await app.next_request("/voice")
    await asyncio.sleep(2)  # two seconds into the listening (not a synchronisation)
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = rig.adapter.config.http.public_base_url
    await asyncio.to_thread(lambda: client.calls(voice.params["CallSid"]).update(
        twiml="<Response><Redirect method='GET'>/last</Redirect></Response>"))
    last = signed(await app.next_request("/last", within=10))
    await finished(rig)
    assert last.params["CallStatus"] == "in-progress"
    assert app.received("/g") == [] and app.received("/next") == []
    folder = layout.call_spool(rig.adapter.config.spool_dir_local, voice.params["CallSid"])
    assert list(folder.glob("utterance-*")) == []


async def test_a_hang_up_while_listening_requests_nothing(rig: Rig, app: TwimlApp) -> None:
    speech_menu(app, prompt=None, input="speech", action="/g", timeout=30,
                action_on_empty_result=True)
    await rig.call_pressing(Keys(lead_s=1, digits="", silence_s=2))
    await finished(rig)
    assert app.received("/g") == [] and app.received("/next") == []
