"""The FreeSWITCH driver alone (no interpreter) on the real FreeSWITCH of the test session
(`conftest.freeswitch_real`): the test places loopback calls (`freeswitch_lab.RealFreeSwitch`),
the driver receives them on the dialplan's ``socket`` and the test drives its `CallControl`.

What FreeSWITCH did is read from its own events on the test's ESL connection:
`DriverRig.apps` is what it executed on the adapter's leg (CHANNEL_EXECUTE: application and
data, in order), `DriverRig.wait_app` waits for one to start. Each rig has its own folder in the
session's spool, so files of one test never meet another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid as uuid_module
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from freeswitch_lab import FreeSwitchStack, RealCall, RealFreeSwitch

from adapter.pbx.base import IncomingCall, PathMap, RecordRequest
from adapter.pbx.freeswitch import FreeSwitchCall, FreeSwitchDriver, FreeSwitchSettings
from adapter.pbx.freeswitch.protocol import EslEvent

__all__ = ["FROM", "TO", "DriverCall", "DriverRig", "driver_rig", "settings_for", "wav_seconds",
           "write_prompt"]

TO = "+15557650000"
FROM = "+15551230001"
CALL_TIMEOUT = 15.0


@dataclass
class DriverCall:
    """One call: `caller` is A (the test's side), `control` the driver's view of B."""

    caller: RealCall
    incoming: IncomingCall
    release: asyncio.Event  # set it and the handler returns (the driver then hangs up)

    @property
    def control(self) -> FreeSwitchCall:
        assert isinstance(self.incoming.control, FreeSwitchCall)
        return self.incoming.control

    @property
    def uuid(self) -> str:
        """B's uuid: the channel the adapter controls."""
        return self.incoming.pbx_call_id


@dataclass
class DriverRig:
    fs: RealFreeSwitch
    driver: FreeSwitchDriver
    spool: Path  # this rig's folder inside the session's spool (the driver's PathMap.local)
    calls: asyncio.Queue[tuple[IncomingCall, asyncio.Event]] = field(
        default_factory=asyncio.Queue)
    _releases: list[asyncio.Event] = field(default_factory=list)

    async def call(self, *, caller_name: str = "Alice", extension: str = "caller",
                   to: str = TO, from_: str = FROM, context: str = "twiml") -> DriverCall:
        """A loopback call into ``twiml`` (or via a lab extension, `context` ``lab``); the
        caller starts in lab.xml's `extension`."""
        assert self.driver.outbound_address is not None
        caller = self.fs.place_call(self.driver.outbound_address, to=to, from_=from_,
                                    caller_name=caller_name, extension=extension,
                                    context=context)
        incoming, release = await asyncio.wait_for(self.calls.get(), CALL_TIMEOUT)
        caller.channel_uuid = incoming.pbx_call_id
        self._releases.append(release)
        return DriverCall(caller, incoming, release)

    def request(self, name: str = "RE1", *, finish_on_key: str = "1234567890*#",
                max_length: int = 30, timeout: int = 5, beep: bool = True) -> RecordRequest:
        return RecordRequest(path=self.spool / "recordings" / "CA1" / f"{name}.wav",
                             finish_on_key=finish_on_key, max_length=max_length,
                             silence_timeout=timeout, beep=beep)

    async def apps(self, uuid: str, *, completed: bool = False) -> list[tuple[str, str]]:
        """(application, data) FreeSWITCH started on `uuid` so far (or, `completed`, those
        that have finished), in order, once every event fired before this call has come."""
        await self.fs.sync()
        name = "CHANNEL_EXECUTE_COMPLETE" if completed else "CHANNEL_EXECUTE"
        return [(e.get("Application"), e.get("Application-Data")) for e in self.fs.events
                if e.name == name and e.unique_id == uuid]

    async def wait_app(self, uuid: str, app: str, *, completed: bool = False,
                       within: float = CALL_TIMEOUT) -> EslEvent:
        name = "CHANNEL_EXECUTE_COMPLETE" if completed else "CHANNEL_EXECUTE"
        return await self.fs.wait_event(
            lambda e: e.name == name and e.unique_id == uuid and e.get("Application") == app,
            within=within)

    async def wait_hangup(self, uuid: str, within: float = CALL_TIMEOUT) -> EslEvent:
        """B's (or any leg's) CHANNEL_HANGUP_COMPLETE."""
        return await self.fs.wait_event(
            lambda e: e.name == "CHANNEL_HANGUP_COMPLETE" and e.unique_id == uuid,
            within=within)

    def release_all(self) -> None:
        for release in self._releases:
            release.set()


def settings_for(stack: FreeSwitchStack, folder: str, **overrides: object) -> FreeSwitchSettings:
    """The driver's settings for `stack`, its spool being `folder` inside the session's."""
    host, port = stack.socket_address
    values: dict[str, object] = dict(
        listen_host=host, listen_port=port, esl_host=stack.esl_host, esl_port=stack.esl_port,
        esl_password=stack.esl_password,
        spool=PathMap(local=stack.spool_local / folder, pbx=stack.spool_pbx / folder),
        connect_timeout=5.0, command_timeout=5.0, linger_grace=2.0,
    )
    values.update(overrides)
    return FreeSwitchSettings(**values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def driver_rig(stack: FreeSwitchStack, **settings: object) -> AsyncIterator[DriverRig]:
    """The driver, started on the real FreeSWITCH; stopped (and every test call ended) after."""
    fs = RealFreeSwitch(stack)
    await fs.start()
    folder = f"rigs/{uuid_module.uuid4().hex}"
    spool = stack.spool_local / folder
    spool.mkdir(parents=True)
    driver = FreeSwitchDriver(settings_for(stack, folder, **settings))
    rig = DriverRig(fs, driver, spool)

    async def on_call(incoming: IncomingCall) -> None:
        release = asyncio.Event()
        await rig.calls.put((incoming, release))
        await release.wait()

    try:
        await driver.start(on_call)
        try:
            yield rig
        finally:
            rig.release_all()
            await driver.stop()
    finally:
        await fs.stop()


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def write_prompt(path: Path, seconds: float, level: int = 16) -> Path:
    """A WAV prompt of `seconds` (8 kHz mono 16-bit, a constant low level)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(level.to_bytes(2, "little", signed=True) * int(8000 * seconds))
    return path
