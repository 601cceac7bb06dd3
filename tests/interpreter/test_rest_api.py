"""The Recordings and Calls REST API, one behavioural suite for both PBXs, driven by the official
`twilio` client against a running adapter that serves HTTP: on Asterisk (a real Asterisk 22,
the test callers of tests/labs/asterisk_lab.py) and on a real FreeSWITCH 1.10.12
(tests/labs/freeswitch_local.py, with the loopback callers of tests/labs/freeswitch_lab.py).

The caller of a live call sends a continuous 440 Hz tone (Asterisk ``tone440``; FreeSWITCH
lab.xml's ``speak_<ms>``). What a rig can observe of the PBX is its recording
activity on the adapter's leg, as words: ``start``, ``stop``, ``mute``, ``unmute`` (Asterisk:
the MixMonitorStart / MixMonitorStop / MixMonitorMute events on the test side's AMI;
FreeSWITCH: the ``uuid_record start|stop|mask|unmask`` commands it ran, from the API events it
fires for every api command), so a refused request can be shown to have changed nothing on the
PBX."""

from __future__ import annotations

import asyncio
import base64
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiohttp
import pbx_rigs
import pytest
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN, adapter_config, running_adapter
from asterisk_lab import CALLEE_NO_ANSWER, CALLEE_TONE1000, CallerScript, originate
from audio_checks import channel_samples, tone_power
from esl_server.plans import RecordPlan
from freeswitch_lab import RealFreeSwitch, freeswitch_under_test
from freeswitch_outbound_lab import job_result, originated, reached_adapter
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import TwimlApp

from adapter.recordings import media
from adapter.service import Adapter

T = TypeVar("T")
TO, FROM = "+15557650000", "+15551230005"
ACTIVITY_TIMEOUT = 10.0


# --- the two PBXs ------------------------------------------------------------------------------


class Rig(Protocol):
    adapter: Adapter

    async def call(self, *, speaks: bool, seconds: int) -> str:
        """A caller phones the adapter: a 440 Hz tone (`speaks` False) or speech that goes on
        (for a <Record>) for about `seconds`; returns the PBX's id of the adapter's leg."""

    async def activity(self, channel: str, *, at_least: int = 0) -> list[str]:
        """The recording activity on `channel` so far, once every earlier PBX action has been
        seen, and at least `at_least` words of it."""


@dataclass
class AsteriskRig:
    adapter: Adapter
    ami: Any
    _words: list[tuple[str, str]] = field(default_factory=list)  # (Uniqueid, word)
    _markers: set[str] = field(default_factory=set)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.ami.register_event("MixMonitor*", self._on_event)
        self.ami.register_event("UserEvent", self._on_event)

    def _on_event(self, _manager: Any, event: Any) -> None:
        name = str(event.get("Event", ""))
        if name == "UserEvent":
            self._markers.add(str(event.get("UserEvent", "")))
        elif name == "MixMonitorMute":
            self._words.append((str(event.get("Uniqueid")),
                                "mute" if str(event.get("State")) == "1" else "unmute"))
        elif name in ("MixMonitorStart", "MixMonitorStop"):
            self._words.append((str(event.get("Uniqueid")), name[len("MixMonitor"):].lower()))
        self._arrived.set()

    async def _until(self, done: Callable[[], bool]) -> None:
        async def wait() -> None:
            while not done():
                self._arrived.clear()
                await self._arrived.wait()
        await asyncio.wait_for(wait(), ACTIVITY_TIMEOUT)

    async def call(self, *, speaks: bool, seconds: int) -> str:
        script = CallerScript.SPEAK_LOOP if speaks else CallerScript.TONE440
        return await originate(self.ami, script, TO, from_number=FROM, caller_name="REST Caller",
                               variables={"DURATION_S": str(seconds)})

    async def activity(self, channel: str, *, at_least: int = 0) -> list[str]:
        # A UserEvent of our own, sent after the requests, comes back after the events those
        # requests caused (one manager event stream).
        marker = f"twiml-test-{uuid.uuid4().hex[:12]}"
        await self.ami.send_action({"Action": "UserEvent", "UserEvent": marker})

        def words() -> list[str]:
            return [word for unique_id, word in self._words if unique_id == channel]

        await self._until(lambda: marker in self._markers and len(words()) >= at_least)
        return words()


@dataclass
class FreeSwitchRig:
    adapter: Adapter
    fs: RealFreeSwitch

    async def call(self, *, speaks: bool, seconds: int) -> str:
        address = self.adapter.driver.outbound_address  # type: ignore[union-attr]
        # speaks: silent until the <Record> starts, then 440 Hz for `seconds`; otherwise
        # 440 Hz from the start, for `seconds`.
        extension = "caller" if speaks else f"speak_{seconds * 1000}"
        call = self.fs.place_call(address, to=TO, from_=FROM, caller_name="REST_Caller",
                                  extension=extension)
        if speaks:
            call.plan_record(RecordPlan(talk_s=seconds))
            return ""  # known once the call is answered; no test asks for it
        return await self.fs.adapter_leg(call)

    async def activity(self, channel: str, *, at_least: int = 0) -> list[str]:
        # FreeSWITCH's API events: every uuid_record command it ran on the adapter's leg.
        names = {"start": "start", "stop": "stop", "mask": "mute", "unmask": "unmute"}

        def words(commands: list[str]) -> list[str]:
            return [names.get(parts[2], parts[2]) for parts in
                    (command.split(" ") for command in commands)
                    if parts[:2] == ["uuid_record", channel] and len(parts) > 2]

        return words(await self.fs.api_commands_so_far(lambda c: len(words(c)) >= at_least,
                                                       within=ACTIVITY_TIMEOUT))


pbx = pbx_rigs.pbx  # which PBX: the shared suites' fixture


@pytest.fixture
async def rig(pbx: tuple[str, Any, Any], app: TwimlApp, tmp_path: Path) -> AsyncIterator[Rig]:
    kind, lab, ami = pbx
    if kind == "asterisk":
        async with running_adapter(adapter_config(lab, tmp_path / "data",
                                                  app.url("/voice"))) as adapter:
            yield AsteriskRig(adapter, ami)
        return
    async with freeswitch_under_test(lab, tmp_path, app.url("/voice"),
                                     serve_http=True) as (adapter, fs):
        assert isinstance(fs, RealFreeSwitch)
        yield FreeSwitchRig(adapter, fs)


# --- helpers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveCall:
    sid: str
    channel: str  # the adapter's leg: Asterisk Uniqueid, FreeSWITCH UUID


def sdk(adapter: Adapter, token: str = AUTH_TOKEN) -> Client:
    client = Client(ACCOUNT_SID, token)
    client.api.base_url = adapter.config.http.public_base_url
    return client


def basic_auth(token: str) -> dict[str, str]:
    """HTTP Basic auth for a plain aiohttp request (the account SID and `token`)."""
    pair = base64.b64encode(f"{ACCOUNT_SID}:{token}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


async def off_loop(call: Callable[[], T]) -> T:
    """The SDK is synchronous; the adapter runs on this loop: call it from a thread."""
    return await asyncio.to_thread(call)


async def refused(call: Callable[[], object], status: int, code: int) -> None:
    """The request fails with Twilio's error body: this status, this code, and a message."""
    with pytest.raises(TwilioRestException) as info:
        await off_loop(call)
    error = info.value
    assert (error.status, error.code) == (status, code), (error.status, error.code, error.msg)
    assert isinstance(error.msg, str) and error.msg


async def live_call(rig: Rig, app: TwimlApp, seconds: int = 30) -> LiveCall:
    """A call that is answered (the /ready request says so) and then waits `seconds`."""
    response = VoiceResponse()
    response.say("Hello.")
    response.redirect("/ready")
    app.answer("/voice", response)
    waiting = VoiceResponse()
    waiting.pause(length=seconds)
    app.answer("/ready", waiting)
    channel = await rig.call(speaks=False, seconds=seconds + 10)
    ready = await app.next_request("/ready")
    assert ready.params["CallStatus"] == "in-progress"
    return LiveCall(ready.params["CallSid"], channel)


async def completed_callback(app: TwimlApp) -> dict[str, str]:
    while True:
        request = await app.next_request("/rec", within=30)
        assert request.signature_valid
        if request.params["RecordingStatus"] in ("completed", "absent"):
            return request.params


async def finished(adapter: Adapter, within: float = 30) -> str:
    return await asyncio.wait_for(adapter.finished.get(), within)


def level_dbfs(samples: list[int]) -> float:
    if not samples:
        return -120.0
    rms = math.sqrt(sum(s * s for s in samples) / len(samples))
    return 20 * math.log10(rms / 32768) if rms else -120.0


# --- recordings on a live call -------------------------------------------------------------------


@pytest.mark.parametrize("behavior", ["silence", "skip"])
async def test_create_pause_resume_stop(rig: Rig, app: TwimlApp, behavior: str) -> None:
    call = await live_call(rig, app)
    client = sdk(rig.adapter)
    recordings = client.calls(call.sid).recordings
    began = time.monotonic()
    created = await off_loop(lambda: recordings.create(
        recording_status_callback=app.url("/rec"), recording_channels="mono"))
    assert created.status == "in-progress"
    assert created.source == "StartCallRecordingAPI"
    assert created.channels == 1 and created.call_sid == call.sid
    assert await rig.activity(call.channel, at_least=1) == ["start"]
    await asyncio.sleep(2)  # two seconds of real audio (not a synchronisation)
    paused = await off_loop(lambda: recordings(created.sid).update(
        status="paused", pause_behavior=behavior))
    assert paused.status == "paused"
    # silence: the recording is muted and keeps its time; skip: it ends, resuming starts another
    expected = ["start", "mute", "unmute"] if behavior == "silence" else ["start", "stop", "start"]
    assert await rig.activity(call.channel, at_least=2) == expected[:2]
    await asyncio.sleep(2)
    resumed = await off_loop(lambda: recordings("Twilio.CURRENT").update(status="in-progress"))
    assert resumed.sid == created.sid and resumed.status == "in-progress"
    assert await rig.activity(call.channel, at_least=3) == expected
    await asyncio.sleep(2)
    stopped = await off_loop(lambda: recordings(created.sid).update(status="stopped"))
    assert stopped.status == "stopped"
    # The file cannot outlast the REST calls that started and stopped it; how much longer than
    # the three 2 s waits they took depends on the machine's load.
    took = time.monotonic() - began
    assert await rig.activity(call.channel, at_least=4) == [*expected, "stop"]

    done = await completed_callback(app)
    assert done["RecordingSid"] == created.sid
    assert done["RecordingSource"] == "StartCallRecordingAPI"
    wav = rig.adapter.config.data_dir / "recordings" / f"{created.sid}.wav"
    info = media.wav_info(wav)
    tone = channel_samples(wav, 0, start=0.5, length=1.0)
    assert level_dbfs(tone) > -40 and tone_power(tone, 440) > 20 * tone_power(tone, 1000)
    if behavior == "silence":
        # The paused seconds are kept, as silence: about 6 s, quiet in the middle.
        assert 5.2 <= info.duration <= took, (info.duration, took)
        assert level_dbfs(channel_samples(wav, 0, start=2.5, length=1.0)) < -60
    else:
        # The paused seconds are left out: about 4 s of uninterrupted tone.
        assert 3.2 <= info.duration <= took - 2.0, (info.duration, took)
        for start in (0.5, 1.5, 2.5, 3.0):
            assert level_dbfs(channel_samples(wav, 0, start=start, length=0.4)) > -40

    fetched = await off_loop(lambda: client.recordings(created.sid).fetch())
    assert fetched.status == "completed" and int(fetched.duration) >= 3
    await off_loop(lambda: client.calls(call.sid).update(status="completed"))
    assert await finished(rig.adapter, 20) == call.sid
    before = await rig.activity(call.channel)
    await refused(lambda: recordings.create(), 400, 21220)  # the call has ended
    assert await rig.activity(call.channel) == before


async def test_twilio_current_is_ambiguous_with_two(rig: Rig, app: TwimlApp) -> None:
    call = await live_call(rig, app)
    recordings = sdk(rig.adapter).calls(call.sid).recordings
    first = await off_loop(lambda: recordings.create())
    await off_loop(lambda: recordings.create(recording_track="inbound"))
    assert await rig.activity(call.channel, at_least=2) == ["start", "start"]
    await refused(lambda: recordings("Twilio.CURRENT").update(status="paused"), 400, 16108)
    assert await rig.activity(call.channel) == ["start", "start"]  # neither was paused
    # By its SID, one of them can be paused.
    paused = await off_loop(lambda: recordings(first.sid).update(status="paused"))
    assert paused.status == "paused"
    assert await rig.activity(call.channel, at_least=3) == ["start", "start", "mute"]


async def test_list_fetch_delete_and_call_resource(rig: Rig, app: TwimlApp) -> None:
    adapter = rig.adapter
    call = await live_call(rig, app)
    call_sid = call.sid
    client = sdk(adapter)
    resource = await off_loop(lambda: client.calls(call_sid).fetch())
    assert resource.status == "in-progress" and resource.direction == "inbound"
    assert resource._from == FROM and resource.to == TO
    sids = []
    for _ in range(3):
        created = await off_loop(lambda: client.calls(call_sid).recordings.create(
            recording_status_callback=app.url("/rec")))
        sids.append(created.sid)
    await asyncio.sleep(1)  # a second of audio (not a synchronisation)
    for sid in sids:
        await off_loop(lambda sid=sid: client.calls(call_sid).recordings(sid).update(
            status="stopped"))
    for _ in sids:
        await completed_callback(app)

    # Paging: page_size=2 makes the SDK follow next_page_uri.
    listed = await off_loop(lambda: client.recordings.list(call_sid=call_sid, page_size=2))
    assert sorted(r.sid for r in listed) == sorted(sids)
    page = await off_loop(lambda: client.recordings.page(page_size=2))
    assert len(list(page)) == 2 and page.next_page_url is not None
    under_call = await off_loop(lambda: client.calls(call_sid).recordings.list())
    assert {r.sid for r in under_call} == set(sids)
    one = await off_loop(lambda: client.calls(call_sid).recordings(sids[1]).fetch())
    assert one.sid == sids[1] and one.status == "completed" and one.call_sid == call_sid

    gone = sids[0]
    assert await off_loop(lambda: client.recordings(gone).delete()) is True
    await refused(lambda: client.recordings(gone).fetch(), 404, 20404)
    media_url = adapter.config.recording_url(gone)
    async with aiohttp.ClientSession() as http, \
            http.get(media_url, headers=basic_auth(AUTH_TOKEN)) as response:
        assert response.status == 404
    assert not (adapter.config.data_dir / "recordings" / f"{gone}.wav").exists()
    left = await off_loop(lambda: client.calls(call_sid).recordings.list())
    assert {r.sid for r in left} == set(sids[1:])

    calls = await off_loop(lambda: client.calls.list())
    assert call_sid in {c.sid for c in calls}
    ended = await off_loop(lambda: client.calls(call_sid).update(status="completed"))
    assert ended.status == "completed"
    assert await finished(adapter, 20) == call_sid
    await refused(lambda: client.calls(call_sid).recordings.create(), 400, 21220)
    fetched = await off_loop(lambda: client.calls(call_sid).fetch())
    assert fetched.status == "completed"


async def test_errors(rig: Rig, app: TwimlApp) -> None:
    """Each refused request gets Twilio's status, code and error body, and changes nothing on
    the PBX (nothing started, paused or stopped)."""
    adapter = rig.adapter
    call = await live_call(rig, app)
    call_sid = call.sid
    await refused(lambda: sdk(adapter, "x" * 32).calls(call_sid).recordings.create(),
                  401, 20003)
    url = (f"{adapter.config.http.public_base_url}/2010-04-01/Accounts/{ACCOUNT_SID}"
           f"/Calls/{call_sid}/Recordings.json")
    async with aiohttp.ClientSession() as http, \
            http.post(url, headers=basic_auth("x" * 32)) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic ")
        body = await response.json()
    assert body == {"code": 20003, "message": "Authenticate",
                    "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}
    client = sdk(adapter)
    recordings = client.calls(call_sid).recordings
    await refused(lambda: recordings("RE" + "0" * 32).fetch(), 404, 20404)
    await refused(lambda: recordings("RE" + "0" * 32).update(status="paused"), 404, 20404)
    await refused(lambda: recordings("Twilio.CURRENT").update(status="paused"), 404, 20404)
    await refused(lambda: client.calls("CA" + "0" * 32).recordings.create(), 404, 20404)
    await refused(lambda: recordings.create(recording_channels="3d"), 400, 20001)
    await refused(lambda: recordings.create(recording_track="sideways"), 400, 20001)
    await refused(lambda: recordings.create(recording_status_callback="/relative"), 400, 11100)
    assert await rig.activity(call.channel) == []  # nothing started on the PBX

    created = await off_loop(lambda: recordings.create())
    assert await rig.activity(call.channel, at_least=1) == ["start"]
    await refused(lambda: recordings(created.sid).update(status="rewinding"), 400, 20001)
    await refused(lambda: recordings(created.sid).update(status="paused",
                                                         pause_behavior="loud"), 400, 20001)
    await refused(lambda: client.calls(call_sid).update(status="ringing"), 400, 20001)
    await refused(lambda: client.calls(call_sid).update(url="/relative"), 400, 21205)
    assert await rig.activity(call.channel) == ["start"]  # not paused, not stopped
    assert call_sid in adapter.sessions  # the call goes on
    rows = await adapter.ctx.store.list_recordings(ACCOUNT_SID, call_sid=call_sid)  # type: ignore[union-attr]
    assert [(r.sid, r.status) for r in rows] == [(created.sid, "in-progress")]

    # A call that has ended: 21220, and no attempt on the PBX.
    await off_loop(lambda: client.calls(call_sid).update(status="completed"))
    assert await finished(adapter, 20) == call_sid
    before = await rig.activity(call.channel)
    await refused(lambda: recordings.create(), 400, 21220)
    await refused(lambda: recordings(created.sid).update(status="paused"), 400, 21220)
    await refused(lambda: client.calls(call_sid).update(url=app.url("/new")), 400, 21220)
    await refused(lambda: client.calls(call_sid).update(status="completed"), 400, 21220)
    assert await rig.activity(call.channel) == before
    assert app.received("/new") == []


# --- the call resource: redirect and end a live call -------------------------------------------


async def test_url_redirect_stops_a_record_from_outside(rig: Rig, app: TwimlApp) -> None:
    response = VoiceResponse()
    response.say("Leave a message.")
    response.redirect("/record")
    app.answer("/voice", response)
    record = VoiceResponse()
    record.record(action="/done", timeout=0, max_length=60, recording_status_callback="/rec")
    app.answer("/record", record)
    after = VoiceResponse()
    after.say("Thanks.")
    after.hangup()
    app.answer("/new", after)
    await rig.call(speaks=True, seconds=40)
    started = await app.next_request("/record")
    call_sid = started.params["CallSid"]
    await asyncio.sleep(3)  # three seconds of message (not a synchronisation)
    client = sdk(rig.adapter)
    await off_loop(lambda: client.calls(call_sid).update(url=app.url("/new"), method="GET"))
    new = await app.next_request("/new")
    assert new.method == "GET" and new.signature_valid
    assert new.params["CallSid"] == call_sid and new.params["CallStatus"] == "in-progress"
    done = await completed_callback(app)
    assert done["RecordingStatus"] == "completed"
    assert 2 <= int(done["RecordingDuration"]) <= 5
    assert await finished(rig.adapter) == call_sid
    assert app.received("/done") == []  # the new TwiML replaced the <Record>'s action


async def test_twiml_redirect_ends_a_pause(rig: Rig, app: TwimlApp) -> None:
    call = await live_call(rig, app, seconds=60)
    client = sdk(rig.adapter)
    await off_loop(lambda: client.calls(call.sid).update(
        twiml="<Response><Redirect method='GET'>/last</Redirect></Response>"))
    last = await app.next_request("/last", within=10)
    assert last.params["CallSid"] == call.sid and last.method == "GET"
    assert await finished(rig.adapter) == call.sid  # /last is empty: the call ends


async def test_canceled_leaves_an_answered_call_alone(rig: Rig, app: TwimlApp) -> None:
    """Twilio: ``Status=canceled`` "will not affect calls already in progress";
    ``Status=completed`` ends them."""
    adapter = rig.adapter
    call = await live_call(rig, app, seconds=30)
    client = sdk(adapter)
    unchanged = await off_loop(lambda: client.calls(call.sid).update(status="canceled"))
    assert unchanged.status == "in-progress"
    assert call.sid in adapter.sessions
    assert not adapter.sessions[call.sid].call.hung_up.is_set()
    ended = await off_loop(lambda: client.calls(call.sid).update(status="completed"))
    assert ended.status == "completed"
    assert await finished(adapter, 20) == call.sid
    fetched = await off_loop(lambda: client.calls(call.sid).fetch())
    assert fetched.status == "completed"


def tone_wav(seconds: float, hz: float = 1000.0) -> bytes:
    """A WAV file in memory: 8 kHz mono 16-bit, a `hz` tone."""
    import io
    import struct
    import wave

    frames = int(seconds * 8000)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(struct.pack(f"<{frames}h", *(
            int(8000 * math.sin(2 * math.pi * hz * i / 8000)) for i in range(frames))))
    return buffer.getvalue()


async def test_a_redirect_during_a_play_download_cuts_the_play(rig: Rig, app: TwimlApp) -> None:
    """The REST redirect arrives while `<Play>`'s audio is still downloading: the old `<Play>`
    must not start afterwards (it would hold the new TwiML for its 20 s)."""
    from aiohttp import web

    live = await live_call(rig, app, seconds=60)
    slow = VoiceResponse()
    slow.play(app.url("/slow.wav"))
    app.answer("/slow", slow)
    release = app.held["/slow.wav"] = asyncio.Event()
    app.raw_routes["/slow.wav"] = lambda _request: web.Response(
        body=tone_wav(20.0), content_type="audio/wav")
    app.answer("/last", "<Response><Hangup/></Response>")
    client = sdk(rig.adapter)
    await off_loop(lambda: client.calls(live.sid).update(url=app.url("/slow"), method="GET"))
    await app.next_request("/slow.wav", within=10)  # the download has begun, and waits
    await off_loop(lambda: client.calls(live.sid).update(url=app.url("/last"), method="GET"))
    release.set()
    await app.next_request("/last", within=10)
    assert await finished(rig.adapter, 8) == live.sid  # not after the 20 s prompt


# --- outbound calls (POST /Calls.json) ----------------------------------------------------------

# A callee that answers with 1000 Hz and hangs up after 4 s: asterisk_lab's, lab.xml's 2000
# (which answers after 1 s); one that rings and never answers: asterisk_lab's, lab.xml's 2002.
CALLEE_ANSWERS = {"asterisk": CALLEE_TONE1000, "freeswitch": "2000"}
CALLEE_RINGS = {"asterisk": CALLEE_NO_ANSWER, "freeswitch": "2002"}


async def test_outbound_call_with_record(rig: Rig, app: TwimlApp) -> None:
    adapter = rig.adapter
    to = CALLEE_ANSWERS["asterisk" if isinstance(rig, AsteriskRig) else "freeswitch"]
    greeting = VoiceResponse()
    greeting.say("Hello, this is a call from the adapter.")
    greeting.pause(length=10)
    app.answer("/outbound", greeting)
    client = sdk(adapter)
    call = await off_loop(lambda: client.calls.create(
        to=to, from_="+15550001234", url=app.url("/outbound"),
        status_callback=app.url("/status"),
        status_callback_event=["initiated", "answered", "completed"],
        record=True, recording_channels="dual", recording_status_callback=app.url("/rec")))
    assert call.status == "queued" and call.direction == "outbound-api"
    assert call.sid.startswith("CA")

    fetched = await app.next_request("/outbound")
    assert fetched.signature_valid
    assert fetched.params["CallSid"] == call.sid
    assert fetched.params["Direction"] == "outbound-api"
    assert fetched.params["CallStatus"] == "in-progress"
    assert fetched.params["To"] == to and fetched.params["From"] == "+15550001234"
    if isinstance(rig, FreeSwitchRig):
        (attempt,) = await originated(rig.fs, at_least=1, call_sid=call.sid)
        assert reached_adapter(rig.fs, attempt.channel)  # leg A, transferred to twiml-outbound
    # The callee hangs up after 4 s: the call ends, the recording completes.
    assert await finished(adapter) == call.sid
    done = await app.next_request("/rec", within=30)
    assert done.signature_valid
    assert done.params["RecordingStatus"] == "completed"
    assert done.params["RecordingSource"] == "OutboundAPI"
    assert done.params["RecordingChannels"] == "2" and done.params["CallSid"] == call.sid
    wav = adapter.config.data_dir / "recordings" / f"{done.params['RecordingSid']}.wav"
    callee = channel_samples(wav, 0, start=1.0, length=2.0)
    assert tone_power(callee, 1000) > 20 * tone_power(callee, 440)  # channel 1: the callee
    if isinstance(rig, FreeSwitchRig):
        ours = channel_samples(wav, 1, start=1.0, length=2.0)  # channel 2: what we played
        assert tone_power(callee, 1000) > 20 * tone_power(ours, 1000)
    await adapter.ctx.outbox.wait_idle(20)  # type: ignore[union-attr]
    statuses = [r.params["CallStatus"] for r in app.received("/status")]
    assert statuses == ["queued", "in-progress", "completed"]
    assert all(r.signature_valid for r in app.received("/status"))
    final = app.received("/status")[-1].params
    assert 3 <= int(final["CallDuration"]) <= 6
    assert (await off_loop(lambda: client.calls(call.sid).fetch())).status == "completed"
    if isinstance(rig, FreeSwitchRig):
        row = await adapter.ctx.store.get_call(call.sid)  # type: ignore[union-attr]
        assert row is not None and row.pbx_channel == attempt.channel  # known before the answer
        # the far end hung up (leg B's 2000 extension ended with its hangup application)
        ended = await rig.fs.wait_event(lambda e: e.name == "CHANNEL_HANGUP_COMPLETE"
                                        and e.unique_id == attempt.channel)
        assert ended.get("Hangup-Cause") == "NORMAL_CLEARING"


async def test_create_answers_queued_when_the_callee_rings_first(
        rig: Rig, app: TwimlApp, monkeypatch: pytest.MonkeyPatch) -> None:
    """Twilio's create answers with the call as queued. On a busy machine the callee can ring
    before the adapter has read the originate's reply (seen on CI): forced here by holding the
    driver's originate until its ringing has been reported."""
    adapter = rig.adapter
    driver = adapter.driver
    assert driver is not None
    real_originate = driver.originate

    async def originate_then_ring(request: Any, on_failed: Any, *, on_ringing: Any) -> str:
        rang = asyncio.Event()

        async def ringing(call_sid: str) -> None:
            await on_ringing(call_sid)
            rang.set()

        channel = await real_originate(request, on_failed, on_ringing=ringing)
        await asyncio.wait_for(rang.wait(), 20)
        return channel

    monkeypatch.setattr(driver, "originate", originate_then_ring)
    to = CALLEE_RINGS["asterisk" if isinstance(rig, AsteriskRig) else "freeswitch"]
    client = sdk(adapter)
    call = await off_loop(lambda: client.calls.create(
        to=to, from_="+15550001234", twiml="<Response><Say>hi</Say></Response>", timeout=60))
    assert call.status == "queued"
    assert (await off_loop(lambda: client.calls(call.sid).fetch())).status == "ringing"
    assert (await off_loop(lambda: client.calls(call.sid).update(status="canceled"))
            ).status == "canceled"
    assert await finished(adapter, 20) == call.sid


async def test_outbound_call_rings_and_is_canceled(rig: Rig, app: TwimlApp) -> None:
    """A REST call to a callee that rings: the `ringing` status callback (Asterisk: the
    channel's Newstate; FreeSWITCH: its CHANNEL_PROGRESS), then ``Status=canceled`` ends the
    attempt (FreeSWITCH: ``uuid_kill … ORIGINATOR_CANCEL`` of the ringing channel); the call is
    `canceled`."""
    adapter = rig.adapter
    to = CALLEE_RINGS["asterisk" if isinstance(rig, AsteriskRig) else "freeswitch"]
    events = ["initiated", "ringing", "answered", "completed"]
    client = sdk(adapter)
    call = await off_loop(lambda: client.calls.create(
        to=to, from_="+15550001234", twiml="<Response><Say>hi</Say></Response>",
        status_callback=app.url("/status"), status_callback_event=events, timeout=60))
    first = await app.next_request("/status", within=10)
    ringing = await app.next_request("/status", within=10)
    assert [first.params["CallStatus"], ringing.params["CallStatus"]] == ["queued", "ringing"]
    assert ringing.signature_valid and ringing.params["CallSid"] == call.sid
    assert ringing.params["SequenceNumber"] == "1"
    assert (await off_loop(lambda: client.calls(call.sid).fetch())).status == "ringing"

    canceled = await off_loop(lambda: client.calls(call.sid).update(status="canceled"))
    assert canceled.status == "canceled"
    assert await finished(adapter, 20) == call.sid
    final = await app.next_request("/status", within=10)
    assert final.params["CallStatus"] == "canceled" and final.params["CallDuration"] == "0"
    assert final.signature_valid
    assert (await off_loop(lambda: client.calls(call.sid).fetch())).status == "canceled"
    if isinstance(rig, FreeSwitchRig):
        (attempt,) = await originated(rig.fs, at_least=1, call_sid=call.sid)
        result = await job_result(rig.fs, attempt.channel)
        assert result.body.strip() == "-ERR ORIGINATOR_CANCEL"
        assert f"uuid_kill {attempt.channel} ORIGINATOR_CANCEL" in (
            await rig.fs.api_commands_so_far())
        assert not reached_adapter(rig.fs, attempt.channel)
    # Cancelling a call that is over: Twilio's 21220.
    with pytest.raises(TwilioRestException) as info:
        await off_loop(lambda: client.calls(call.sid).update(status="canceled"))
    assert info.value.status == 400 and info.value.code == 21220
