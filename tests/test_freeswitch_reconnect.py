"""The inbound (api) connection is re-established with back-off when FreeSWITCH drops it;
api commands made meanwhile wait (bounded) or fail clearly; calls in progress, which live on
their own outbound sockets, go on and their recordings still complete."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest
from fs_esl_server import STATUS_BODY
from test_freeswitch_call_recording import SCALE, request
from test_freeswitch_driver import next_app, started_rig

from adapter.pbx.base import CallInterrupted, PbxError
from adapter.recordings import media

FAST = {"reconnect_initial": 0.05, "reconnect_max": 0.4, "api_wait": 0.3}


async def test_api_fails_clearly_while_down_then_works(tmp_path: Path) -> None:
    async with started_rig(tmp_path, scale=SCALE, **FAST) as rig:
        call = await rig.call()
        await call.control.answer()
        rig.fs.set_inbound_down(True)
        await asyncio.wait_for(rig.driver.inbound.wait_down(), 10)
        with pytest.raises(PbxError, match="down; reconnecting"):
            await rig.driver.api("status")
        # the call goes on over its own socket meanwhile
        await call.control.pause(1)
        assert call.fake.runs("sleep") and not call.control.hung_up.is_set()
        rig.fs.set_inbound_down(False)
        await asyncio.wait_for(rig.driver.inbound.wait_up(), 10)
        assert await rig.driver.api("status") == STATUS_BODY
        assert rig.driver.inbound.reconnects == 1


async def test_reconnect_backs_off(tmp_path: Path) -> None:
    async with started_rig(tmp_path, scale=SCALE, reconnect_initial=0.1,
                           reconnect_max=0.8) as rig:
        rig.fs.set_inbound_down(True)
        await asyncio.wait_for(rig.fs.wait_inbound_attempts(1 + 6), 20)
        rig.fs.set_inbound_down(False)
        await asyncio.wait_for(rig.driver.inbound.wait_up(), 10)
        times = rig.fs.inbound_attempt_times[1:]  # [0] was the start-up connection
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # delays 0.1, 0.2, 0.4, 0.8, 0.8, 0.8: the gaps between attempts double, then stay
        assert gaps[0] < gaps[1] < gaps[2], gaps
        assert all(0.7 <= gap <= 1.2 for gap in gaps[2:6]), gaps


async def test_api_waits_for_a_quick_reconnect(tmp_path: Path) -> None:
    async with started_rig(tmp_path, scale=SCALE, reconnect_initial=0.05, api_wait=5.0) as rig:
        rig.fs.set_inbound_down(True)
        await asyncio.wait_for(rig.driver.inbound.wait_down(), 10)
        waiting = asyncio.ensure_future(rig.driver.api("status"))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        rig.fs.set_inbound_down(False)
        assert await asyncio.wait_for(waiting, 10) == STATUS_BODY


async def test_recording_started_before_the_loss_completes_after_it(tmp_path: Path) -> None:
    async with started_rig(tmp_path, scale=SCALE, **FAST) as rig:
        call = await rig.call()
        await call.control.answer()
        handle = await call.control.start_call_recording(request(rig))
        rig.fs.set_inbound_down(True)
        await asyncio.wait_for(rig.driver.inbound.wait_down(), 10)
        await call.control.pause(1)
        rig.fs.set_inbound_down(False)
        await asyncio.wait_for(rig.driver.inbound.wait_up(), 10)
        await call.control.stop_call_recording(handle)
        assert all(media.wav_info(f).frames >= 8000 for f in handle.files)


async def test_recording_ends_with_the_call_while_down(tmp_path: Path) -> None:
    """RECORD_STOP comes on the call's own socket: a recording still completes at hang-up
    while the inbound connection is down."""
    async with started_rig(tmp_path, scale=SCALE, **FAST) as rig:
        call = await rig.call()
        await call.control.answer()
        handle = await call.control.start_call_recording(request(rig, outbound=False))
        rig.fs.set_inbound_down(True)
        await asyncio.wait_for(rig.driver.inbound.wait_down(), 10)
        sleeping = asyncio.ensure_future(call.control.pause(30))
        await next_app(call.fake, "sleep")
        await asyncio.sleep(SCALE)  # a second of audio
        call.fake.caller_hangup()
        await asyncio.gather(sleeping, return_exceptions=True)
        assert await call.control.call_recording_final(handle, 10)
        assert handle.inbound_file is not None and media.wav_info(handle.inbound_file).frames


async def test_calls_are_checked_after_reconnecting(tmp_path: Path) -> None:
    """After the reconnect each call's channel is looked up (uuid_exists); one FreeSWITCH no
    longer knows is treated as ended."""
    async with started_rig(tmp_path, scale=SCALE, **FAST) as rig:
        kept, lost = await rig.call(), await rig.call()
        rig.fs.set_inbound_down(True)
        await asyncio.wait_for(rig.driver.inbound.wait_down(), 10)
        rig.fs.forget_call(lost.fake.uuid)
        rig.fs.set_inbound_down(False)
        await asyncio.wait_for(lost.control.hung_up.wait(), 10)
        assert f"api uuid_exists {kept.fake.uuid}" in rig.fs.inbound_commands
        assert not kept.control.hung_up.is_set()
        await kept.control.answer()


async def test_stop_while_reconnecting(tmp_path: Path) -> None:
    async with started_rig(tmp_path, scale=SCALE, stop_driver=False, **FAST) as rig:
        rig.fs.set_inbound_down(True)
        await asyncio.wait_for(rig.driver.inbound.wait_down(), 10)
        await asyncio.wait_for(rig.driver.stop(), 10)
        attempts = rig.fs.inbound_attempts
        await asyncio.sleep(0.5)
        assert rig.fs.inbound_attempts == attempts, "no reconnecting after stop"
        with pytest.raises(PbxError):
            await rig.driver.api("status")


async def test_a_calls_own_commands_use_its_socket_while_down(tmp_path: Path) -> None:
    """uuid_record, uuid_break and uuid_kill about a call go over the call's own socket
    (``async full`` allows api there) while the inbound connection is down: no waiting."""
    async with started_rig(tmp_path, scale=SCALE, reconnect_initial=5.0, api_wait=5.0) as rig:
        call = await rig.call()
        await call.control.answer()
        rig.fs.set_inbound_down(True)
        await asyncio.wait_for(rig.driver.inbound.wait_down(), 10)
        handle = await asyncio.wait_for(call.control.start_call_recording(request(rig)), 2)
        await call.control.pause(1)
        sleeping = asyncio.ensure_future(call.control.pause(60))
        await next_app(call.fake, "sleep")
        await asyncio.wait_for(call.control.interrupt(), 2)
        with pytest.raises(CallInterrupted):
            await sleeping
        await asyncio.wait_for(call.control.stop_call_recording(handle), 2)
        assert all(media.wav_info(f).frames > 0 for f in handle.files)
        await asyncio.wait_for(call.control.terminate(), 2)
        await asyncio.wait_for(call.fake.finished.wait(), 10)
        assert call.fake.hangup_by == "uuid_kill"
        on_socket = [c.split(" ")[1] for c in call.fake.commands if c.startswith("api ")]
        distinct = [name for i, name in enumerate(on_socket) if on_socket[i - 1:i] != [name]]
        assert distinct == ["uuid_record", "uuid_break", "uuid_record", "uuid_kill"]
        assert not any("uuid_record" in c for c in rig.fs.inbound_commands)
