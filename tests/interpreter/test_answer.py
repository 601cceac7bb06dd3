"""When the call is answered, on both PBXs (Twilio's rule: adapter/interpreter/answering.py,
sources in docs/twilio-reference-notes.md): before the first verb, except a leading `<Pause>`
(answered after it), `<Redirect>` (the call keeps ringing while the next document is fetched)
and `<Dial answerOnBridge="true">` (the bridge answers).

Two truths are checked: the CallStatus the app receives, and what the PBX ran on the adapter's
channel, in order and with the PBX's time: on Asterisk the AGI commands (AMI ``AGIExecStart``:
``ANSWER``, ``EXEC Wait``, ``EXEC Dial``), on FreeSWITCH the applications (``answer``,
``sleep``, ``bridge``: the ``CHANNEL_EXECUTE`` events of the real FreeSWITCH). The rigs are the
shared suites' (tests/support/pbx_rigs.py)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pbx_rigs
from asterisk_lab import CALLEE_TONE1000, CallerScript, originate
from freeswitch_lab import EslConnection, RealFreeSwitch
from pbx_rigs import FROM, TO, AsteriskRig, FreeSwitchRig, Rig, finished
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import TwimlApp, stop_recording

from adapter.pbx.freeswitch.protocol import EslEvent

pbx, rig = pbx_rigs.pbx, pbx_rigs.rig  # the shared suites' fixtures

# What the PBX ran on the adapter's channel, as the session's commands.
AGI_VERBS = {"ANSWER": "answer", "EXEC Wait": "pause", "EXEC Dial": "dial"}
FS_VERBS = {"answer": "answer", "sleep": "pause", "bridge": "dial"}


def _agi_verb(command: str) -> str | None:
    return next((verb for prefix, verb in AGI_VERBS.items() if command.startswith(prefix)), None)


Ran = list[tuple[str, float]]  # (verb, PBX seconds)
Seen = Callable[[], Awaitable[Ran]]


@contextlib.asynccontextmanager
async def watched_call(rig: Rig) -> AsyncIterator[Seen]:
    """Place a call to the adapter; yields what its PBX has run on the call so far, once every
    event the PBX sent before the question has arrived (a marker sent after them comes back
    after them: one event queue per connection)."""
    ran: Ran = []
    markers: dict[str, asyncio.Future[None]] = {}
    loop = asyncio.get_running_loop()

    def marker_seen(marker: str) -> None:
        future = markers.pop(marker, None)
        if future is not None and not future.done():
            future.set_result(None)

    async def settled(send: Callable[[str], Awaitable[object]]) -> Ran:
        marker = f"twiml-answer-test-{uuid.uuid4().hex}"
        markers[marker] = future = loop.create_future()
        await send(marker)
        await asyncio.wait_for(future, 10)
        return list(ran)

    if isinstance(rig, AsteriskRig):
        ami = rig.ami

        def on_agi(_manager: Any, event: Any) -> None:
            # The adapter's half of the test call: originate()'s ChannelId (one call per test).
            uniqueid = str(event.get("Uniqueid", ""))
            verb = _agi_verb(str(event.get("Command", "")))
            if verb and uniqueid.startswith("twiml-test-") and not uniqueid.endswith("-caller"):
                ran.append((verb, loop.time()))

        ami.register_event("AGIExecStart", on_agi)
        ami.register_event("UserEvent", lambda _m, e: marker_seen(str(e.get("UserEvent"))))
        await originate(ami, CallerScript.SILENT, TO, from_number=FROM,
                        caller_name="Answer", variables={"SILENCE_S": "30"})
        yield lambda: settled(lambda m: ami.send_action({"Action": "UserEvent",
                                                         "UserEvent": m}))
        return
    assert isinstance(rig, FreeSwitchRig)
    address = rig.adapter.driver.outbound_address  # type: ignore[union-attr]
    assert isinstance(rig.fs, RealFreeSwitch)
    callers: set[str] = set()

    def on_event(event: EslEvent) -> None:
        if event.name == "API":
            marker_seen(event.get("API-Command-Argument"))
            return
        # B, the adapter's leg: its loopback partner is our caller A.
        partner = event.variable("other_loopback_leg_uuid") or ""
        verb = FS_VERBS.get(event.get("Application"))
        if verb is not None and partner in callers and event.unique_id != partner:
            ran.append((verb, int(event.get("Event-Date-Timestamp")) / 1e6))

    stack = rig.fs.stack
    events = await EslConnection.open(stack.esl_host, stack.esl_port, stack.esl_password,
                                      on_event=on_event)
    try:
        await events.subscribe("CHANNEL_EXECUTE API")
        callers.add(rig.fs.place_call(address, to=TO, from_=FROM, caller_name="Answer").uuid)
        yield lambda: settled(lambda m: events.api(f"echo {m}"))
    finally:
        await events.close()


def verbs(ran: Ran) -> list[str]:
    return [verb for verb, _at in ran]


def hold(app: TwimlApp, path: str) -> asyncio.Event:
    """The app answers `path` only once the returned event is set: meanwhile the adapter waits
    for that document, and the test looks at the call."""
    return app.held.setdefault(path, asyncio.Event())


async def test_stop_recording_first_is_answered_before_it(rig: Rig, app: TwimlApp) -> None:
    first = VoiceResponse()
    first.append(stop_recording("none-running"))
    first.pause(length=1)
    first.redirect("/next")
    app.answer("/voice", first)
    app.answer("/next", VoiceResponse())
    release = hold(app, "/next")
    async with watched_call(rig) as ran:
        nxt = await app.next_request("/next")
        assert nxt.params["CallStatus"] == "in-progress"
        assert verbs(await ran()) == ["answer", "pause"]
        release.set()
        await finished(rig)
    assert app.received("/voice")[0].params["CallStatus"] == "ringing"


async def test_leading_redirect_keeps_ringing(rig: Rig, app: TwimlApp) -> None:
    """The next document is fetched while the call rings; its first verb answers."""
    first = VoiceResponse()
    first.redirect("/next")
    app.answer("/voice", first)
    then = VoiceResponse()
    then.append(stop_recording("none-running"))
    then.pause(length=1)
    app.answer("/next", then)
    release = hold(app, "/next")
    async with watched_call(rig) as ran:
        nxt = await app.next_request("/next")
        assert nxt.params["CallStatus"] == "ringing"
        assert verbs(await ran()) == []
        release.set()
        await finished(rig)
        assert verbs(await ran()) == ["answer", "pause"]


async def test_leading_pause_rings_then_answers(rig: Rig, app: TwimlApp) -> None:
    first = VoiceResponse()
    first.pause(length=2)
    first.redirect("/next")
    app.answer("/voice", first)
    app.answer("/next", VoiceResponse())
    release = hold(app, "/next")
    async with watched_call(rig) as ran:
        nxt = await app.next_request("/next")
        assert nxt.params["CallStatus"] == "in-progress"
        (pause, paused_at), (answer, answered_at) = await ran()
        assert (pause, answer) == ("pause", "answer")
        assert 1.9 <= answered_at - paused_at <= 3.5  # PBX time: answered after the 2 s
        release.set()
        await finished(rig)


async def test_dial_answer_on_bridge_is_answered_by_the_bridge(rig: Rig, app: TwimlApp) -> None:
    first = VoiceResponse()
    # 2000 answers after a while on both PBXs (asterisk_lab's callees, lab.xml's).
    first.dial(CALLEE_TONE1000, answer_on_bridge=True, action="/dialed", timeout=10)
    app.answer("/voice", first)
    app.answer("/dialed", VoiceResponse())
    async with watched_call(rig) as ran:
        dialed = await app.next_request("/dialed")
        await finished(rig)
        assert verbs(await ran()) == ["dial"]  # no answer before the bridge (nor after it)
    assert dialed.params["DialBridged"] == "true"
    assert dialed.params["CallStatus"] == "in-progress"  # answered by the bridge
