"""The inbound (api) connection on a real FreeSWITCH, cut by a TCP proxy
(tests/support/tcp_proxy.py) between the driver and the event socket: it is re-established with
back-off; api commands made meanwhile wait (bounded) or fail clearly; calls in progress, which live
on their own outbound sockets, go on and their recordings still complete; a call's own commands use
its socket.

The driver's ``esl_host``/``esl_port`` are the proxy's; the test's own ESL connection
(`freeswitch_lab.RealFreeSwitch`, which sees every api command FreeSWITCH ran, from its API
events) goes straight to FreeSWITCH. "Down" is `TcpProxy.cut` (FreeSWITCH and the driver each
see a reset) with `TcpProxy.refuse` (every reconnect attempt is reset at once, counted)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator

import pytest
from freeswitch_driver_rig import DriverRig, driver_rig
from freeswitch_lab import FreeSwitchStack
from tcp_proxy import TcpProxy

from adapter.pbx.base import CallInterrupted, CallRecordingRequest, PbxError
from adapter.recordings import media

FAST = {"reconnect_initial": 0.05, "reconnect_max": 0.4, "api_wait": 0.3}
TALKS = "speak_99999"  # lab.xml: the caller sends 440 Hz for 100 s


@contextlib.asynccontextmanager
async def proxied_rig(stack: FreeSwitchStack,
                      **settings: object) -> AsyncIterator[tuple[DriverRig, TcpProxy]]:
    """`driver_rig` whose driver reaches the event socket through a `TcpProxy`."""
    proxy = TcpProxy((stack.esl_host, stack.esl_port))
    await proxy.start()
    host, port = proxy.address
    try:
        async with driver_rig(stack, esl_host=host, esl_port=port, **settings) as rig:
            assert proxy.open_connections == 1, "the driver's inbound connection is proxied"
            yield rig, proxy
    finally:
        await proxy.stop()


async def go_down(rig: DriverRig, proxy: TcpProxy) -> None:
    """The inbound connection drops and stays down (reconnects are refused) until `go_up`."""
    proxy.refuse(True)
    assert proxy.cut() == 1
    await asyncio.wait_for(rig.driver.inbound.wait_down(), 10)


async def go_up(rig: DriverRig, proxy: TcpProxy) -> None:
    proxy.refuse(False)
    await asyncio.wait_for(rig.driver.inbound.wait_up(), 10)


def recording(rig: DriverRig, *, inbound: bool = True,
              outbound: bool = True) -> CallRecordingRequest:
    return CallRecordingRequest(key="RE1", directory=rig.spool / "recordings" / "CA1",
                                inbound=inbound, outbound=outbound)


async def test_a_call_records_while_the_inbound_connection_is_stalled(
    freeswitch_real: FreeSwitchStack,
) -> None:
    """A call's own api commands go on its socket, never behind the one inbound connection
    every call shares: with that connection stalled (up, but the proxy holds its bytes both
    ways), a recording starts, runs and stops, and its file is final. On the inbound
    connection the start would have waited for the stall's end (issue #13 row 5: at 50
    concurrent calls a ``uuid_record`` waited up to 384 ms behind the others there)."""
    async with proxied_rig(freeswitch_real) as (rig, proxy):
        call = await rig.call(extension=TALKS)
        await call.control.answer()
        proxy.hold()
        try:
            handle = await call.control.start_call_recording(recording(rig))
            await call.control.pause(1)
            await call.control.stop_call_recording(handle)
        finally:
            proxy.release()
        (stereo,) = handle.files
        assert media.wav_is_final(stereo) and media.wav_info(stereo).frames >= 8000
        # Nothing of the stall is left: the held connection is the driver's first, working.
        assert "is ready" in await rig.driver.api("status")
        assert proxy.connections == 1 and rig.driver.inbound.reconnects == 0


async def test_api_fails_clearly_while_down_then_works(freeswitch_real: FreeSwitchStack) -> None:
    async with proxied_rig(freeswitch_real, **FAST) as (rig, proxy):
        call = await rig.call()
        await call.control.answer()
        await go_down(rig, proxy)
        with pytest.raises(PbxError, match="down; reconnecting"):
            await rig.driver.api("status")
        # the call goes on over its own socket meanwhile: FreeSWITCH runs its sleep
        await call.control.pause(1)
        assert ("sleep", "1000") in await rig.apps(call.uuid, completed=True)
        assert not call.control.hung_up.is_set()
        await go_up(rig, proxy)
        assert "is ready" in await rig.driver.api("status")
        assert rig.driver.inbound.reconnects == 1
        assert proxy.connections == 2  # the first connection and the one reconnect


async def test_reconnect_backs_off(freeswitch_real: FreeSwitchStack) -> None:
    async with proxied_rig(freeswitch_real, reconnect_initial=0.1,
                           reconnect_max=0.8) as (rig, proxy):
        await go_down(rig, proxy)
        await proxy.wait_attempts(1 + 6, within=20)
        await go_up(rig, proxy)
        times = proxy.attempt_times[1:7]  # [0] was the start-up connection
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # delays 0.1, 0.2, 0.4, 0.8, 0.8, 0.8: the gaps between attempts double, then stay
        assert gaps[0] < gaps[1] < gaps[2], gaps
        assert all(0.7 <= gap <= 1.5 for gap in gaps[2:]), gaps
        assert rig.driver.inbound.reconnects == 1 and "is ready" in await rig.driver.api("status")


async def test_api_waits_for_a_quick_reconnect(freeswitch_real: FreeSwitchStack) -> None:
    async with proxied_rig(freeswitch_real, reconnect_initial=0.05, reconnect_max=0.1,
                           api_wait=5.0) as (rig, proxy):
        await go_down(rig, proxy)
        waiting = asyncio.ensure_future(rig.driver.api("status"))
        await proxy.wait_attempts(1 + 3)  # three reconnects refused meanwhile
        assert not waiting.done()
        proxy.refuse(False)
        assert "is ready" in await asyncio.wait_for(waiting, 10)
        ran = await rig.fs.api_commands_so_far()
        assert ran.count("status") >= 2  # start-up, the reconnect's check and this one


async def test_inbound_connection_lost(freeswitch_real: FreeSwitchStack) -> None:
    """The connection drops once (nothing refused): the driver reconnects and an api command
    made meanwhile waits for it; calls, on their own sockets, still come and work."""
    async with proxied_rig(freeswitch_real) as (rig, proxy):
        assert proxy.cut() == 1
        await asyncio.wait_for(rig.driver.inbound.wait_down(), 10)
        assert "is ready" in await rig.driver.api("status")
        assert rig.driver.inbound.reconnects == 1 and proxy.connections == 2
        call = await rig.call()
        await call.control.answer()
        assert ("answer", "") in await rig.apps(call.uuid, completed=True)


async def test_recording_started_before_the_loss_completes_after_it(
    freeswitch_real: FreeSwitchStack,
) -> None:
    async with proxied_rig(freeswitch_real, **FAST) as (rig, proxy):
        call = await rig.call(extension=TALKS)
        await call.control.answer()
        handle = await call.control.start_call_recording(recording(rig))
        await go_down(rig, proxy)
        await call.control.pause(1)
        await go_up(rig, proxy)
        await call.control.stop_call_recording(handle)
        assert await call.control.call_recording_final(handle, 10)
        for path in handle.files:
            assert media.wav_info(path).duration >= 1.0, path
        ran = await rig.fs.api_commands_so_far()
        assert [c.split(" ", 2)[:2] for c in ran if c.startswith("uuid_record")] == [
            ["uuid_record", call.uuid], ["uuid_record", call.uuid]]


async def test_recording_ends_with_the_call_while_down(freeswitch_real: FreeSwitchStack) -> None:
    """RECORD_STOP comes on the call's own socket: a recording still completes at hang-up
    while the inbound connection is down."""
    async with proxied_rig(freeswitch_real, **FAST) as (rig, proxy):
        call = await rig.call(extension=TALKS)
        await call.control.answer()
        handle = await call.control.start_call_recording(recording(rig, outbound=False))
        await go_down(rig, proxy)
        sleeping = asyncio.ensure_future(call.control.pause(30))
        await rig.wait_app(call.uuid, "sleep")
        await asyncio.sleep(1.0)  # the caller talks for a second, then hangs up
        call.caller.caller_hangup()
        await asyncio.gather(sleeping, return_exceptions=True)
        assert await call.control.call_recording_final(handle, 10)
        assert handle.stereo_file is not None
        assert media.wav_info(handle.stereo_file).duration >= 0.5
        stop = await rig.fs.wait_event(
            lambda e: e.name == "RECORD_STOP" and e.unique_id == call.uuid)
        assert stop.get("Record-File-Path").endswith(".wav")
        assert not rig.driver.inbound.up  # all of it while the inbound connection was down


async def test_calls_are_checked_after_reconnecting(freeswitch_real: FreeSwitchStack) -> None:
    """After the reconnect each call's channel is looked up (uuid_exists); FreeSWITCH still
    has both, so both go on. (A channel FreeSWITCH no longer knows while its socket stays
    silent cannot be made on a real switch: tests/pbx/freeswitch/test_faults_freeswitch.py.)"""
    async with proxied_rig(freeswitch_real, **FAST) as (rig, proxy):
        first, second = await rig.call(), await rig.call()
        await go_down(rig, proxy)
        await go_up(rig, proxy)
        wanted = {f"uuid_exists {first.uuid}", f"uuid_exists {second.uuid}"}
        ran = await rig.fs.api_commands_so_far(lambda ran: wanted <= set(ran))
        assert wanted <= set(ran)
        for call in (first, second):
            assert not call.control.hung_up.is_set()
            await call.control.answer()
            assert ("answer", "") in await rig.apps(call.uuid, completed=True)


async def test_stop_while_reconnecting(freeswitch_real: FreeSwitchStack) -> None:
    async with proxied_rig(freeswitch_real, **FAST) as (rig, proxy):
        await go_down(rig, proxy)
        await proxy.wait_attempts(1 + 2)  # reconnecting
        await asyncio.wait_for(rig.driver.stop(), 10)
        attempts = proxy.attempts
        # No event marks "no more attempts": watch for three times the back-off cap.
        await asyncio.sleep(3 * FAST["reconnect_max"])
        assert proxy.attempts == attempts, "no reconnecting after stop"
        with pytest.raises(PbxError):
            await rig.driver.api("status")


async def test_a_calls_own_commands_use_its_socket_while_down(
    freeswitch_real: FreeSwitchStack,
) -> None:
    """uuid_record, uuid_break and uuid_kill about a call go over the call's own socket
    (``async full`` allows api there) while the inbound connection is down: no waiting.
    FreeSWITCH ran them (its API events) while no inbound connection of the driver existed."""
    async with proxied_rig(freeswitch_real, reconnect_initial=5.0, api_wait=5.0) as (rig,
                                                                                      proxy):
        call = await rig.call(extension=TALKS)
        await call.control.answer()
        before = len(await rig.fs.api_commands_so_far())
        await go_down(rig, proxy)
        handle = await asyncio.wait_for(call.control.start_call_recording(recording(rig)), 2)
        await call.control.pause(1)
        sleeping = asyncio.ensure_future(call.control.pause(60))
        await rig.wait_app(call.uuid, "sleep")
        await asyncio.wait_for(call.control.interrupt(), 2)
        with pytest.raises(CallInterrupted):
            await sleeping
        await asyncio.wait_for(call.control.stop_call_recording(handle), 2)
        assert await call.control.call_recording_final(handle, 10)
        assert all(media.wav_info(f).frames > 0 for f in handle.files)
        await asyncio.wait_for(call.control.terminate(), 2)
        hangup = await rig.wait_hangup(call.uuid)
        ran = (await rig.fs.api_commands_so_far())[before:]
        assert (proxy.connections, proxy.open_connections) == (1, 0), "never reconnected"
        names = [c.split(" ", 1)[0] for c in ran if call.uuid in c]
        distinct = [name for i, name in enumerate(names) if names[i - 1:i] != [name]]
        assert distinct == ["uuid_record", "uuid_break", "uuid_record", "uuid_kill"], ran
        assert hangup.get("Hangup-Cause") == "NORMAL_CLEARING"
