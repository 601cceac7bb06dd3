"""The callers of the real-PBX load benchmark, one kind per PBX: each call, once answered, is
silent for 1 s, sends 440 Hz for `TONE_S` seconds, is silent for 1 s and hangs up. Each kind
also tells, from its PBX's own events, when the adapter got the call (Asterisk: AsyncAGIStart;
FreeSWITCH: the dialplan's ``socket`` application), when the adapter answered it (Asterisk: the
channel's Newstate to Up; FreeSWITCH: CHANNEL_ANSWER) and when its first recording started
(Asterisk: MixMonitorStart; FreeSWITCH: uuid_record's RECORD_START)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from typing import Any

import bench.labs  # noqa: F401  (puts tests/labs and tests/support on sys.path)

LEAD_S = 1.0  # the caller's silence before it talks
TONE_S = 2.0  # how long it talks (440 Hz); 2 s, not 3 s, to fit the module's time budget
TAIL_S = 1.0  # its silence after, before it hangs up
TO, FROM = "+15557650000", "+15551230013"
_TONE_NAME = f"bench-tone440-{TONE_S:g}s"


class AsteriskCallers:
    """Calls through the Asterisk lab's real ``[twiml]`` dialplan: an Originate of
    ``Local/<To>@twiml`` (the ;2 half runs the dialplan and reaches the adapter) whose ;1 half,
    once answered, plays silence, the tone, silence (Playback), then hangs up."""

    def __init__(self, lab: Any, ami: Any) -> None:
        from asterisk_lab import TEST_SOUNDS_DIR

        self.ami = ami
        self.arrived: dict[str, float] = {}  # adapter half's channel name → monotonic time
        self.answered: dict[str, float] = {}
        self.recording: dict[str, float] = {}
        self.refused: list[str] = []  # calls the PBX could not place (their Reason)
        tone = lab.local_path(f"{TEST_SOUNDS_DIR}/{_TONE_NAME}.wav")
        if not tone.exists():
            subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(tone),
                            "synth", str(TONE_S), "sine", "440", "vol", "0.5"], check=True)
        self._data = f"silence/1&{TEST_SOUNDS_DIR}/{_TONE_NAME}&silence/1"
        ami.register_event("AsyncAGIStart", self._on_event)
        ami.register_event("MixMonitorStart", self._on_event)
        ami.register_event("Newstate", self._on_event)

    def _on_event(self, _manager: Any, event: Any) -> None:
        name = event.get("Event")
        if name == "Newstate":
            if str(event.get("ChannelState")) != "6":
                return
            times = self.answered
        else:
            times = self.arrived if name == "AsyncAGIStart" else self.recording
        times.setdefault(str(event.get("Channel", "")), time.monotonic())

    async def place(self) -> None:
        reply = await asyncio.wait_for(self.ami.send_action({
            "Action": "Originate", "Channel": f"Local/{TO}@twiml",
            "Application": "Playback", "Data": self._data,
            "CallerID": f'"Bench" <{FROM}>', "Timeout": "30000", "Async": "true",
        }), timeout=60.0)
        messages = reply if isinstance(reply, list) else [reply]
        if messages[-1].get("Response") != "Success":
            self.refused.append(str(messages[-1].get("Reason", "")))  # counted as lost

    def start_delays(self) -> list[float]:
        """Seconds from the adapter getting each call to its first recording's start."""
        return [self.recording[u] - t for u, t in self.arrived.items() if u in self.recording]

    def stage_delays(self) -> tuple[list[float], list[float]]:
        """The two parts of each start delay: arrival → answer, answer → recording start."""
        return _stages(self.arrived, self.answered, self.recording)


class FreeSwitchCallers:
    """Calls through the real FreeSWITCH's shipped ``twiml`` dialplan (tests/labs/
    freeswitch_lab.py's loopback caller): A parks (silent) until answered, then the caller's
    script moves it to lab.xml's ``speak_3000`` after 1 s and hangs it up 1 s after the tone."""

    def __init__(self, fs: Any, address: tuple[str, int]) -> None:
        self.fs = fs
        self.address = address
        self.placed: list[Any] = []
        self.refused: list[str] = []  # calls the PBX could not place (its -ERR)

    async def place(self) -> None:
        call = self.fs.place_call(self.address, to=TO, from_=FROM, caller_name="Bench")
        # The lab's caller follows a RecordPlan at each `record` (<Record>); this one keeps to
        # its own script.
        call.record_started = lambda _channel_uuid: None
        self.placed.append(call)
        try:
            await asyncio.wait_for(call.originated, 120)
        except Exception as exc:  # counted as lost
            self.refused.append(str(exc))
            return
        # The caller's script, in real time from its answer (its behaviour, not a wait).
        await asyncio.sleep(LEAD_S)
        await self.fs.api(f"uuid_transfer {call.uuid} speak_{int(TONE_S * 1000)} XML lab")
        await asyncio.sleep(TONE_S + TAIL_S)
        if not call.hung_up:
            await self.fs.api(f"uuid_kill {call.uuid} NORMAL_CLEARING")

    def _times(self) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
        """(arrived, answered, recording started) per channel, in seconds, from the events' own
        timestamps (Event-Date-Timestamp, µs)."""
        arrived: dict[str, float] = {}
        answered: dict[str, float] = {}
        started: dict[str, float] = {}
        for event in self.fs.events:
            stamp = int(event.get("Event-Date-Timestamp") or 0) / 1e6
            if event.name == "CHANNEL_EXECUTE" and event.get("Application") == "socket":
                arrived.setdefault(event.unique_id, stamp)
            elif event.name == "CHANNEL_ANSWER":
                answered.setdefault(event.unique_id, stamp)
            elif (event.name == "RECORD_START"
                  and event.get("Event-Calling-Function") != "switch_ivr_record_file_event"):
                started.setdefault(event.unique_id, stamp)
        return arrived, answered, started

    def start_delays(self) -> list[float]:
        """Seconds from FreeSWITCH handing each call to the adapter to its first uuid_record
        RECORD_START."""
        arrived, _answered, started = self._times()
        return [started[u] - t for u, t in arrived.items() if u in started]

    def stage_delays(self) -> tuple[list[float], list[float]]:
        """The two parts of each start delay: arrival → answer, answer → recording start."""
        return _stages(*self._times())


def _stages(arrived: dict[str, float], answered: dict[str, float],
            started: dict[str, float]) -> tuple[list[float], list[float]]:
    calls = [u for u in arrived if u in answered and u in started]
    return ([answered[u] - arrived[u] for u in calls], [started[u] - answered[u] for u in calls])
