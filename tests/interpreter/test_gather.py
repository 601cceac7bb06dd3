"""`<Gather input="dtmf">` on a real Asterisk 22 and a real FreeSWITCH 1.10.12: the same TwiML
(the twilio SDK's `VoiceResponse`), the same caller pressing the same keys at the same times,
the same signed action requests (checked with `RequestValidator`).

The rigs are tests/support/pbx_rigs.py's; a `Keys` caller presses its keys at given times from
the adapter's answer (a barge-in caller: from when the prompt starts playing)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pbx_rigs
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN
from aiohttp import web
from audio_checks import write_tone
from gather_menus import serve_menu, signed
from pbx_rigs import Keys, Rig, finished
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import TwimlApp

pbx, rig = pbx_rigs.pbx, pbx_rigs.rig  # the shared suites' fixtures

PROMPT = "Please enter your account number, then press the pound key."


def menu(app: TwimlApp, *, say: str = PROMPT, loop: int = 1, **gather: Any) -> None:
    """/voice: a <Gather> with a <Say>, then a <Redirect> to /next (no input); the action /g
    redirects to /after, so the test sees its TwiML run."""
    response = VoiceResponse()
    response.gather(**gather).say(say, loop=loop)
    serve_menu(app, response)


async def test_digits_until_the_finish_key(rig: Rig, app: TwimlApp) -> None:
    menu(app, action="/g", finish_on_key="#", timeout=5)
    await rig.call_pressing(Keys(lead_s=1, digits="12#"))
    done = signed(await app.next_request("/g"))
    signed(await app.next_request("/after"))  # the action's TwiML ran
    await finished(rig)
    assert done.params["Digits"] == "12" and done.params["CallStatus"] == "in-progress"
    assert done.method == "POST"
    assert app.received("/next") == []  # nothing after <Gather> ran


async def test_num_digits_ends_it_and_get_is_honoured(rig: Rig, app: TwimlApp) -> None:
    menu(app, action="/g", method="GET", num_digits=3)
    await rig.call_pressing(Keys(lead_s=1, digits="4567"))
    done = signed(await app.next_request("/g"))
    await finished(rig)
    assert done.method == "GET" and done.params["Digits"] == "456"
    assert app.received("/next") == []


async def test_no_input_runs_the_next_verb(rig: Rig, app: TwimlApp) -> None:
    menu(app, action="/g", timeout=2)
    loop = asyncio.get_running_loop()
    await rig.call_pressing(Keys(lead_s=1, digits=""))
    started = loop.time()
    signed(await app.next_request("/next"))
    waited = loop.time() - started
    await finished(rig)
    assert app.received("/g") == []
    assert 2 <= waited <= 12, waited  # the prompt (about 4 s), then the 2 s timeout


async def test_action_on_empty_result(rig: Rig, app: TwimlApp) -> None:
    menu(app, action="/g", timeout=2, action_on_empty_result=True)
    await rig.call_pressing(Keys(lead_s=1, digits=""))
    done = signed(await app.next_request("/g"))
    await finished(rig)
    assert done.params["Digits"] == ""
    assert app.received("/next") == []


async def test_the_first_key_cuts_the_prompt(rig: Rig, app: TwimlApp) -> None:
    """Barge-in: a prompt of about 40 s (a <Say> looped 10 times), a key 1 s into it: the action
    comes long before the prompt could have ended."""
    menu(app, action="/g", num_digits=1, loop=10)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await rig.call_pressing(Keys(lead_s=1, digits="5", on_prompt=True))
    done = signed(await app.next_request("/g"))
    took = loop.time() - started
    await finished(rig)
    assert done.params["Digits"] == "5"
    assert took < 15, took  # unbarged, the prompt alone is 40 s


async def test_the_first_key_cuts_a_play(rig: Rig, app: TwimlApp, tmp_path: Path) -> None:
    """Barge-in on a <Play> of a 20 s WAV, a key 1 s into it; the <Say> after it never plays."""
    audio = write_tone(tmp_path / "long.wav", 1000, 20.0).read_bytes()
    app.raw_routes["/long.wav"] = lambda _r: web.Response(body=audio, content_type="audio/wav")
    response = VoiceResponse()
    gather = response.gather(action="/g", num_digits=1)
    gather.play("/long.wav")
    gather.say(PROMPT)
    app.answer("/voice", response)
    app.answer("/g", VoiceResponse())
    loop = asyncio.get_running_loop()
    started = loop.time()
    await rig.call_pressing(Keys(lead_s=1, digits="*", on_prompt=True))
    done = signed(await app.next_request("/g"))
    took = loop.time() - started
    await finished(rig)
    assert done.params["Digits"] == "*"
    assert took < 15, took  # unbarged: 20 s of WAV, the <Say>, then 5 s of timeout


async def test_keys_pressed_while_the_prompt_is_fetched_count(rig: Rig, app: TwimlApp,
                                                              tmp_path: Path) -> None:
    """The <Gather>'s <Play> comes from a slow media server (held 4 s); the caller does not
    wait for it and types 12# 1 s after the answer: the keys count, in order, once each, and
    the prompt is not played (the first key came before it)."""
    slow_menu(app, tmp_path, finish_on_key="#", timeout=5)
    await rig.call_pressing(Keys(lead_s=1, digits="12#"))
    done = signed(await app.next_request("/g"))
    await finished(rig)
    assert done.params["Digits"] == "12"


async def test_a_key_pressed_while_the_prompt_is_fetched_counts_once(
        rig: Rig, app: TwimlApp, tmp_path: Path) -> None:
    """One key during the slow fetch, then none: the PBX must not hand the same key to the
    next command (the wait for the second digit), which times out: ``Digits`` is that key."""
    slow_menu(app, tmp_path, num_digits=2, timeout=3)
    await rig.call_pressing(Keys(lead_s=1, digits="7"))
    done = signed(await app.next_request("/g"))
    await finished(rig)
    assert done.params["Digits"] == "7"


def slow_menu(app: TwimlApp, tmp_path: Path, **gather: Any) -> None:
    """/voice: a <Gather> (action /g) whose <Play> the media server answers after 4 s."""
    audio = write_tone(tmp_path / "menu.wav", 1000, 2.0).read_bytes()
    app.raw_routes["/slow.wav"] = lambda _r: web.Response(body=audio, content_type="audio/wav")
    app.held["/slow.wav"] = released = asyncio.Event()
    # The media server's delay: the scenario, not a synchronisation.
    asyncio.get_running_loop().call_later(4, released.set)
    response = VoiceResponse()
    response.gather(action="/g", **gather).play("/slow.wav")
    app.answer("/voice", response)
    app.answer("/g", VoiceResponse())


async def test_pause_timeout_between_keys_and_no_finish_key(rig: Rig, app: TwimlApp) -> None:
    """A nested <Pause> waits for the first key; `timeout` runs again after each key (2 s
    between the keys, under the 4 s timeout); finishOnKey="" makes # a digit; and with no
    action the current document's URL is requested."""
    response = VoiceResponse()
    response.gather(timeout=4, finish_on_key="").pause(length=5)
    response.hangup()
    app.answer("/voice", response)
    await rig.call_pressing(Keys(lead_s=2, digits="1WW#"))
    await finished(rig)
    first, again = app.received("/voice")  # the second <Gather> got no key: <Hangup>
    assert "Digits" not in first.params
    assert signed(again).params["Digits"] == "1#"


async def test_a_rest_redirect_cuts_a_gather(rig: Rig, app: TwimlApp) -> None:
    """REST ``Twiml`` on a live call during <Gather> (its prompt, then its wait): the new TwiML
    runs at once; no action request."""
    menu(app, action="/g", loop=10, timeout=30)
    await rig.call_pressing(Keys(lead_s=1, digits="", silence_s=60))
    voice = await app.next_request("/voice")
    await asyncio.sleep(2)  # two seconds into the prompt (not a synchronisation)
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = rig.adapter.config.http.public_base_url
    await asyncio.to_thread(lambda: client.calls(voice.params["CallSid"]).update(
        twiml="<Response><Redirect method='GET'>/last</Redirect></Response>"))
    last = signed(await app.next_request("/last", within=10))
    await finished(rig)
    assert last.params["CallStatus"] == "in-progress"
    assert app.received("/g") == [] and app.received("/next") == []
