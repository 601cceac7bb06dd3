"""The asyncio ↔ gevent bridge: one thread with its own hub, no monkey-patching, a ready
handshake, results and errors both ways, a loop that never waits on gevent, a clean stop."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from typing import Any

import gevent
import gevent.event
import gevent.monkey
import gevent.socket
import pytest

from adapter.pbx.base import PbxError
from adapter.pbx.freeswitch.bridge import BridgeStopped, GeventBridge


@pytest.fixture
async def bridge() -> AsyncIterator[GeventBridge]:
    bridge = GeventBridge("test-gevent")
    await bridge.start(lambda: None, within=5)
    yield bridge
    await bridge.stop(within=5)


async def test_ready_handshake_returns_what_setup_returned() -> None:
    bridge = GeventBridge("test-gevent")
    seen: dict[str, Any] = {}

    def setup() -> str:
        seen["thread"] = threading.current_thread()
        seen["hub"] = gevent.get_hub()
        return "ready"

    assert await bridge.start(setup, within=5) == "ready"
    assert seen["thread"] is not threading.current_thread()
    assert seen["thread"].name == "test-gevent"
    assert bridge.running
    await bridge.stop(within=5)
    assert not bridge.running
    assert not seen["thread"].is_alive()


async def test_setup_failure_is_raised_and_the_thread_ends() -> None:
    bridge = GeventBridge("test-gevent")

    def setup() -> None:
        raise PbxError("no FreeSWITCH here")

    with pytest.raises(PbxError, match="no FreeSWITCH here"):
        await bridge.start(setup, within=5)
    assert not bridge.running
    with pytest.raises(BridgeStopped):
        await bridge.call(lambda: 1)


async def test_slow_setup_times_out() -> None:
    bridge = GeventBridge("test-gevent")
    with pytest.raises(PbxError, match="start took over"):
        await bridge.start(lambda: gevent.sleep(5), within=0.2)


async def test_never_monkey_patches(bridge: GeventBridge) -> None:
    def inside() -> tuple[bool, bool]:
        return gevent.monkey.is_module_patched("socket"), socket.socket is gevent.socket.socket

    assert await bridge.call(inside) == (False, False)
    assert not gevent.monkey.is_module_patched("threading")


async def test_results_and_exceptions_cross(bridge: GeventBridge) -> None:
    assert await bridge.call(lambda a, b: a + b, 2, 3) == 5

    def fails() -> None:
        raise ValueError("from gevent")

    with pytest.raises(ValueError, match="from gevent"):
        await bridge.call(fails)


async def test_call_within(bridge: GeventBridge) -> None:
    with pytest.raises(PbxError, match="no answer within"):
        await bridge.call(gevent.sleep, 5, within=0.1)


async def test_loop_runs_while_a_greenlet_waits(bridge: GeventBridge) -> None:
    """A greenlet blocked in gevent does not block asyncio, nor the other greenlets."""
    gate = await bridge.call(gevent.event.Event)
    waiting = asyncio.ensure_future(bridge.call(lambda: gate.wait(10)))
    ticks = 0
    while ticks < 5:  # the asyncio loop keeps running meanwhile
        await asyncio.sleep(0)
        ticks += 1
    assert not waiting.done()
    await bridge.call(gate.set)  # a second greenlet runs while the first one waits
    assert await asyncio.wait_for(waiting, 5) is True


async def test_posts_run_in_the_loop_in_order(bridge: GeventBridge) -> None:
    loop_thread = threading.current_thread()
    received: list[tuple[int, threading.Thread]] = []
    done = asyncio.Event()

    def record(n: int) -> None:
        received.append((n, threading.current_thread()))
        if n == 99:
            done.set()

    def post_many() -> None:
        for n in range(100):
            bridge.post(record, n)
            if n % 10 == 0:
                gevent.sleep(0)

    await bridge.call(post_many)
    await asyncio.wait_for(done.wait(), 5)
    assert [n for n, _ in received] == list(range(100))
    assert all(thread is loop_thread for _, thread in received)


async def test_stop_runs_teardown_there_and_fails_pending_calls() -> None:
    bridge = GeventBridge("test-gevent")
    await bridge.start(lambda: None, within=5)
    torn_down: list[threading.Thread] = []
    pending = asyncio.ensure_future(bridge.call(gevent.sleep, 30))
    await asyncio.sleep(0)  # the call is on its way
    await bridge.call(lambda: None)  # ... and has started by now (jobs start in order)
    await bridge.stop(lambda: torn_down.append(threading.current_thread()), within=5)
    assert torn_down and torn_down[0].name == "test-gevent"
    with pytest.raises(BridgeStopped):
        await asyncio.wait_for(pending, 5)
    with pytest.raises(BridgeStopped):
        await bridge.call(lambda: 1)
    await bridge.stop(within=1)  # twice is harmless


async def test_calls_beyond_the_bound_wait_for_a_greenlet_in_order() -> None:
    """Two greenlets at most: the next calls wait (as data, not greenlets) until one ends,
    then start in the order they were made; every result still arrives."""
    bridge = GeventBridge("test-gevent", max_jobs=2)
    await bridge.start(lambda: None, within=5)
    try:
        gate = await bridge.call(gevent.event.Event)
        two_running = asyncio.Event()
        started: list[int] = []

        def note(n: int) -> None:  # in the loop, posted by the job
            started.append(n)
            if len(started) == 2:
                two_running.set()

        def job(n: int) -> tuple[int, bool]:
            opened = gate.is_set()  # the queued ones start only once a greenlet is free
            bridge.post(note, n)
            if n < 2:
                gate.wait(10)  # the first two hold both greenlets
            return n, opened

        calls = [asyncio.ensure_future(bridge.call(job, n)) for n in range(4)]
        await asyncio.wait_for(two_running.wait(), 5)
        gate.set()  # from this thread: gevent's Event wakes its waiters in their own hub
        results = await asyncio.wait_for(asyncio.gather(*calls), 5)
    finally:
        await bridge.stop(within=5)
    assert results == [(0, False), (1, False), (2, True), (3, True)]
    assert started == [0, 1, 2, 3]
    assert bridge.peak_jobs == 2


async def test_stop_fails_the_calls_still_waiting_for_a_greenlet() -> None:
    bridge = GeventBridge("test-gevent", max_jobs=1)
    await bridge.start(lambda: None, within=5)
    running = asyncio.ensure_future(bridge.call(gevent.sleep, 30))
    queued = asyncio.ensure_future(bridge.call(lambda: "never"))
    await asyncio.sleep(0)  # both calls handed to the hub; the stop's turn comes after them
    await bridge.stop(within=5)
    for call in (running, queued):
        with pytest.raises(BridgeStopped):
            await asyncio.wait_for(call, 5)
