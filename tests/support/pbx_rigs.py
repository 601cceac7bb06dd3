"""The shared behavioural suites' rigs (tests/interpreter/): one per PBX, so one test runs on a
real Asterisk 22 and on a real FreeSWITCH 1.10.12 (the build of docker/provision-freeswitch.sh,
tests/labs/freeswitch_local.py; with ``TWIML_TEST_FREESWITCH=compose`` and a Docker engine, the
compose FreeSWITCH).

A `Caller` describes what the caller does; each rig turns it into its PBX's terms (an Asterisk
test-caller script, or a FreeSWITCH `RecordPlan`, which the real FreeSWITCH plays with a
loopback caller leg). A suite takes the `pbx` and `rig` fixtures with
``from pbx_rigs import pbx, rig``."""

from __future__ import annotations

import asyncio
import contextlib
import wave
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from adapter_harness import adapter_config, running_adapter
from asterisk_lab import CallerScript, originate
from esl_server.plans import Key, RecordPlan
from freeswitch_lab import RealFreeSwitch, freeswitch_under_test
from twiml_app import TwimlApp

from adapter.service import Adapter

TO, FROM = "+15557650000", "+15551230009"


@dataclass(frozen=True)
class Caller:
    """Speaks (or not), then stays silent, presses a key, or hangs up."""

    speaks: bool = True
    then: str = "silence"  # "silence" | "key" | "hangup"
    digit: str = "#"


@dataclass(frozen=True)
class Keys:
    """Once the adapter answers: stays silent for `lead_s` seconds, presses `digits` as
    SendDTMF does (each key about 0.35 s; ``w`` waits 0.5 s, ``W`` 1 s; none: stays silent),
    stays silent for `silence_s` seconds, hangs up.

    `on_prompt`: the caller reacts to a prompt, so `lead_s` counts from when the adapter's
    first prompt starts playing, not from the answer: a barge-in test needs its key during the
    prompt (one pressed while the `<Say>` is still being synthesised counts too, but without
    cutting anything). On FreeSWITCH that is the B leg's ``playback``; on Asterisk the caller
    script still counts from the answer."""

    lead_s: int = 1
    digits: str = ""
    silence_s: int = 20
    on_prompt: bool = False

    def schedule(self) -> tuple[list[tuple[float, str]], float]:
        """When each key is pressed and when it hangs up, in seconds after the adapter
        answered."""
        at, presses = float(self.lead_s), []
        for digit in self.digits:
            if digit in "wW":
                at += 0.5 if digit == "w" else 1.0
            else:
                presses.append((at, digit))
                at += KEY_SECONDS
        return presses, at + self.silence_s


KEY_SECONDS = 0.35  # Asterisk's SendDTMF: 100 ms of tone, 250 ms between keys
PROMPT_WITHIN = 60.0  # how long a `Keys(on_prompt=True)` caller waits for the prompt


class Rig(Protocol):
    adapter: Adapter
    speech_seconds: float

    async def call(self, caller: Caller) -> None: ...

    async def call_pressing(self, keys: Keys) -> None:
        """A call whose caller presses keys at given times (`<Gather>`)."""

    async def call_playing(self, wav: Path, *, digit: str = "#") -> None:
        """A call whose caller plays `wav` (a WAV in `voices(rig)`) as its voice, once the
        adapter records, then presses `digit` and stays silent until the adapter hangs up."""

    async def call_speaking(self, wav: Path) -> None:
        """A call whose caller speaks `wav` from the adapter's first recording on, however
        many recordings the adapter makes meanwhile (a speech `<Gather>` makes several), then
        stays silent until the adapter hangs up."""


def voices(rig: Rig) -> Path:
    """Where a test puts the WAVs a caller plays (in the spool both sides see)."""
    folder = rig.adapter.config.spool_dir_local / "voices"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    return folder


def wav_seconds(wav: Path) -> float:
    with wave.open(str(wav)) as reader:
        return reader.getnframes() / reader.getframerate()


@dataclass
class AsteriskRig:
    adapter: Adapter
    ami: Any
    speech_seconds: float = 6.1  # tests/labs/asterisk_lab.py speech.wav

    async def call(self, caller: Caller) -> None:
        if not caller.speaks:
            script, variables = CallerScript.SILENT, {"SILENCE_S": "12"}
        elif caller.then == "key":
            script, variables = CallerScript.SPEAK_DTMF, {"DIGITS": caller.digit,
                                                          "SILENCE_S": "10"}
        elif caller.then == "hangup":
            script, variables = CallerScript.SPEAK_HANGUP, {}
        else:
            script, variables = CallerScript.SPEAK_SILENCE, {"SILENCE_S": "10"}
        await originate(self.ami, script, TO, from_number=FROM, caller_name="Shared",
                        variables=variables)

    async def call_pressing(self, keys: Keys) -> None:
        variables = {"LEAD_S": str(keys.lead_s), "SILENCE_S": str(keys.silence_s)}
        script = CallerScript.SILENT
        if keys.digits.strip("wW"):
            script, variables["DIGITS"] = CallerScript.KEYS, keys.digits
        else:
            variables["SILENCE_S"] = str(keys.lead_s + keys.silence_s)
        await originate(self.ami, script, TO, from_number=FROM, caller_name="Shared",
                        variables=variables)


    async def call_playing(self, wav: Path, *, digit: str = "#") -> None:
        settings = self.adapter.config.asterisk
        assert settings is not None
        await asyncio.to_thread(wav.chmod, 0o644)  # Asterisk reads it
        inside = wav.relative_to(settings.spool_dir_local).with_suffix("")
        # Two seconds before it speaks: the adapter answers, fetches its TwiML, starts recording.
        await originate(self.ami, CallerScript.SPEAK_FILE, TO, from_number=FROM,
                        caller_name="Shared", variables={
                            "FILE": str(settings.spool_dir / inside), "LEAD_S": "2",
                            "DIGITS": digit, "SILENCE_S": "15"})

    async def call_speaking(self, wav: Path) -> None:
        # speak_file plays on whatever the adapter does; its key after the file changes nothing
        # for input="speech" (no key ends that recording).
        await self.call_playing(wav)


@dataclass
class FreeSwitchRig:
    adapter: Adapter
    fs: RealFreeSwitch
    speech_seconds: float = 3.0

    async def call(self, caller: Caller) -> None:
        talk = self.speech_seconds if caller.speaks else 0.0
        plan = RecordPlan(
            talk_s=talk,
            keys=(Key(talk + 0.2, caller.digit),) if caller.then == "key" else (),
            hangup_at=talk if caller.then == "hangup" else None,
        )
        address = self.adapter.driver.outbound_address  # type: ignore[union-attr]
        call = self.fs.place_call(address, to=TO, from_=FROM, caller_name="Shared")
        call.plan_record(plan)

    async def call_pressing(self, keys: Keys) -> None:
        address = self.adapter.driver.outbound_address  # type: ignore[union-attr]
        # Digital silence from the start (lab.xml's quiet), as a phone sends while its user
        # listens: a speech <Gather> must hear no voice in it.
        call = self.fs.place_call(address, to=TO, from_=FROM, caller_name="Shared",
                                  extension="quiet")
        call.quiet_after_plans = False  # and it stays quiet through any record
        presses, hangup_at = keys.schedule()

        async def caller() -> None:
            # As on Asterisk (the caller script runs once the adapter answers), the caller's
            # clock starts at the answer: the originate's result. A call the adapter ended
            # unanswered has no keys to press.
            try:
                await call.originated
                if keys.on_prompt:
                    await self.fs.wait_event(lambda e: (
                        e.name == "CHANNEL_EXECUTE" and e.get("Application") == "playback"
                        and e.unique_id == call.channel_uuid), within=PROMPT_WITHIN)
            except Exception:
                return  # unanswered, or no prompt: the test's own wait fails
            # Then the caller's script, in real time (its behaviour, not a wait for an event).
            loop = asyncio.get_running_loop()
            start = loop.time()
            for at, digit in presses:
                await asyncio.sleep(max(0.0, start + at - loop.time()))
                if call.hung_up:
                    return
                call.press(digit)
            await asyncio.sleep(max(0.0, start + hangup_at - loop.time()))
            if not call.hung_up:
                call.caller_hangup()

        self.fs.spawn(caller())

    async def call_playing(self, wav: Path, *, digit: str = "#") -> None:
        address = self.adapter.driver.outbound_address  # type: ignore[union-attr]
        call = self.fs.place_call(address, to=TO, from_=FROM, caller_name="Shared", voice=wav)
        talk = wav_seconds(wav)
        # lab.xml's play_file, from the recording's start; the key once the file is played.
        call.plan_record(RecordPlan(talk_s=talk, keys=(Key(talk + 0.5, digit),)))

    async def call_speaking(self, wav: Path) -> None:
        address = self.adapter.driver.outbound_address  # type: ignore[union-attr]
        call = self.fs.place_call(address, to=TO, from_=FROM, caller_name="Shared", voice=wav)
        call.quiet_after_plans = False  # the next records leave it speaking
        call.plan_record(RecordPlan(talk_s=wav_seconds(wav)))


@pytest.fixture(params=[pytest.param("asterisk", marks=pytest.mark.asterisk),
                        pytest.param("freeswitch", marks=pytest.mark.freeswitch)])
def pbx(request: pytest.FixtureRequest) -> tuple[str, Any, Any]:
    """Which PBX; for Asterisk also the lab and the test side's AMI (requested only then, so
    the FreeSWITCH half runs without an Asterisk); for FreeSWITCH the real FreeSWITCH."""
    if request.param == "asterisk":
        return "asterisk", request.getfixturevalue("asterisk_lab"), request.getfixturevalue("ami")
    return "freeswitch", request.getfixturevalue("freeswitch_real"), None


@pytest.fixture
async def rig(pbx: tuple[str, Any, Any], app: TwimlApp, tmp_path: Path) -> AsyncIterator[Rig]:
    async with running_rig(pbx, app, tmp_path) as running:
        yield running


@contextlib.asynccontextmanager
async def running_rig(pbx: tuple[str, Any, Any], app: TwimlApp, tmp_path: Path,
                      environ: Mapping[str, str] | None = None) -> AsyncIterator[Rig]:
    """The rig of `pbx` (the fixture's value), its adapter in ``tmp_path/data``, every number
    routed to ``app``'s ``/voice``; `environ`: more TWIML_ADAPTER_* settings."""
    kind, lab, ami = pbx
    if kind == "asterisk":
        async with running_adapter(adapter_config(lab, tmp_path / "data", app.url("/voice"),
                                                  **(environ or {}))) as adapter:
            yield AsteriskRig(adapter, ami)
        return
    # With the REST API served, as the Asterisk rig's adapter (a suite may redirect a call).
    async with freeswitch_under_test(lab, tmp_path, app.url("/voice"), serve_http=True,
                                     environ=environ) as (adapter, fs):
        yield FreeSwitchRig(adapter, fs)


async def finished(rig: Rig) -> str:
    return await asyncio.wait_for(rig.adapter.finished.get(), 60)
