"""The FreeSWITCH driver started against the ESL test server (`esl_server`): `started_rig`
yields a `Rig` (the fake switch, the driver, the spool) whose `call` places a fake call and
returns it once the driver has handed it over. For the tests of what a real switch cannot be
made to do on demand (tests/pbx/freeswitch/test_faults_freeswitch.py and the few others)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from esl_server.call import FakeCall
from esl_server.server import FakeFreeSwitch

from adapter.pbx.base import IncomingCall, PathMap, RecordRequest
from adapter.pbx.freeswitch import FreeSwitchDriver, FreeSwitchSettings

PBX_SPOOL = PurePosixPath("/var/spool/freeswitch/twiml")  # another path than the adapter's
TO = "+15557650000"
FROM = "+15551230001"


@dataclass
class Call:
    fake: FakeCall
    incoming: IncomingCall
    release: asyncio.Event

    @property
    def control(self):  # type: ignore[no-untyped-def]
        return self.incoming.control


@dataclass
class Rig:
    fs: FakeFreeSwitch
    driver: FreeSwitchDriver
    spool: Path
    calls: asyncio.Queue[tuple[IncomingCall, asyncio.Event]] = field(
        default_factory=asyncio.Queue)

    async def call(self, *, caller_name: str = "Alice", notice_first: bool = False) -> Call:
        assert self.driver.outbound_address is not None
        fake = self.fs.place_call(self.driver.outbound_address, to=TO, from_=FROM,
                                  caller_name=caller_name, notice_first=notice_first)
        incoming, release = await asyncio.wait_for(self.calls.get(), 10)
        return Call(fake, incoming, release)

    def request(self, name: str = "RE1", *, finish_on_key: str = "1234567890*#",
                max_length: int = 30, timeout: int = 5, beep: bool = True) -> RecordRequest:
        return RecordRequest(path=self.spool / "recordings" / "CA1" / f"{name}.wav",
                             finish_on_key=finish_on_key, max_length=max_length,
                             silence_timeout=timeout, beep=beep)


def settings_for(fs: FakeFreeSwitch, spool: Path, **overrides: object) -> FreeSwitchSettings:
    values: dict[str, object] = dict(
        listen_host="127.0.0.1", listen_port=0, esl_host=fs.address[0], esl_port=fs.address[1],
        esl_password="ClueCon", spool=PathMap(local=spool, pbx=PBX_SPOOL),
        connect_timeout=5.0, command_timeout=5.0, linger_grace=2.0,
    )
    values.update(overrides)
    return FreeSwitchSettings(**values)  # type: ignore[arg-type]


def fake_fs(tmp_path: Path, **kwargs: object) -> FakeFreeSwitch:
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    return FakeFreeSwitch(spool_pbx=PBX_SPOOL, spool_local=spool,
                          sound_prefix=tmp_path / "sounds", **kwargs)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def started_rig(
    tmp_path: Path, *, stop_driver: bool = True, scale: float = 0.02, **settings: object
) -> AsyncIterator[Rig]:
    fs = fake_fs(tmp_path, scale=scale)
    await fs.start()
    driver = FreeSwitchDriver(settings_for(fs, tmp_path / "spool", **settings))
    rig = Rig(fs, driver, tmp_path / "spool")

    async def on_call(incoming: IncomingCall) -> None:
        release = asyncio.Event()
        await rig.calls.put((incoming, release))
        await release.wait()

    await driver.start(on_call)
    try:
        yield rig
    finally:
        if stop_driver:
            await driver.stop()
        await fs.stop()
