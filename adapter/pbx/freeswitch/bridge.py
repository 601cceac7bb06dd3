"""The bridge between the adapter's asyncio loop and greenswitch's gevent world.

greenswitch is built on gevent. The adapter never monkey-patches: gevent runs in ONE dedicated
thread with its own hub, and the two sides only meet here.

- asyncio → gevent: `GeventBridge.call` hands a function to the hub with
  ``loop.run_callback_threadsafe`` (gevent's thread-safe wake-up); the hub runs it in a new
  greenlet and the result (or exception) comes back to an asyncio future with
  ``call_soon_threadsafe``. At most `max_jobs` greenlets run calls at once; the calls beyond
  wait, in order, as their function and arguments (a greenlet's stack is KiB; 20,000 calls at
  once took the adapter from 181 to 390 MiB, bench/event_path.py). A call's `within` counts
  from its start.
- gevent → asyncio: `GeventBridge.post` appends a callback to one FIFO that the asyncio loop
  drains; callbacks (results of `call` included) run in the order they were posted. Only the
  first post into an empty FIFO wakes the loop (``call_soon_threadsafe``): a burst of events
  costs one wake-up, not one each.
- backpressure: `GeventBridge.post_from_reader` (a socket's reading greenlet: its events and,
  at its end, its close notice) first waits while `max_pending` posts are not yet run, and
  goes on once the loop has run them down to half of that. The reader then stops reading,
  so the kernel's socket buffer and FreeSWITCH hold a burst, not this process's memory.
  Nothing is dropped or reordered, and no deadlock is possible: the loop never waits for the
  gevent thread, it only runs what was posted.
- start: the thread creates its hub, runs the setup function (connect, bind) and only then
  reports ready, with the setup's result or its exception (the ready handshake).
- stop: a teardown function runs in the gevent thread, greenlets still running are killed (their
  futures fail with `PbxError`), the hub is destroyed and the thread ends.

Code running in the gevent thread must never block: only gevent-cooperative I/O (greenswitch's
sockets, gevent's server) and quick bookkeeping.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import gevent  # type: ignore[import-untyped]
import gevent.event  # type: ignore[import-untyped]

from adapter.pbx.base import PbxError

__all__ = ["BridgeStopped", "GeventBridge"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_Job = tuple["asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...], float | None]
"""A `call` waiting for a greenlet: its future, function, arguments and `within`."""

# Posts not yet run by the loop before a reading greenlet waits (`post_from_reader`): a
# thousand parsed events are a few MiB, and far more than a loop iteration needs.
MAX_PENDING = 1000
# Posts run by one drain before the loop gets to its other work (the rest: next iteration).
DRAIN_BATCH = 256
# Greenlets running `call`s at once (no call waits for another's, so a bound only delays).
MAX_JOBS = 1000


class BridgeStopped(PbxError):
    """The gevent thread is not running (not started yet, or stopped)."""


class GeventBridge:
    """One thread with its own gevent hub, driven from asyncio."""

    def __init__(self, name: str = "freeswitch-esl", *, max_pending: int = MAX_PENDING,
                 max_jobs: int = MAX_JOBS) -> None:
        self.name = name
        self.max_pending = max_pending
        self.max_jobs = max_jobs
        self.peak_jobs = 0  # the most calls ever running at once
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._hub: Any = None
        self._lock = threading.Lock()  # guards _accepting against the hub going away
        self._accepting = False
        self._stopped: Any = None  # gevent.event.Event, created in the gevent thread
        self._jobs: set[Any] = set()  # greenlets started by call()
        self._queued_jobs: collections.deque[_Job] = collections.deque()  # waiting for one
        self._thread_done: asyncio.Future[None] | None = None
        # The posts' FIFO, filled in the gevent thread, drained in the loop (under _posts_lock).
        self._posts_lock = threading.Lock()
        self._posted: collections.deque[tuple[Callable[..., object], tuple[Any, ...]]] = (
            collections.deque())
        self._drain_scheduled = False
        self.pending = 0  # posted, not yet run
        self.peak_pending = 0  # the most ever pending at once
        self._room: Any = None  # gevent.event.Event: set when readers may post again
        self._room_wanted = False  # a reader waits for it

    # --- lifecycle (asyncio side) -----------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._accepting

    def in_gevent_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    async def start(self, setup: Callable[[], T], *, within: float) -> T:
        """Start the thread, run `setup()` there (at most `within` s), return its result."""
        if self._thread is not None:
            raise PbxError(f"{self.name}: already started")
        loop = asyncio.get_running_loop()
        self._loop = loop
        ready: asyncio.Future[T] = loop.create_future()
        self._thread_done = loop.create_future()
        self._thread = threading.Thread(
            target=self._main, args=(setup, ready, within), name=self.name, daemon=True
        )
        self._thread.start()
        try:
            return await ready
        except BaseException:
            await self._join_thread()
            raise

    async def stop(self, teardown: Callable[[], None] | None = None, *, within: float) -> None:
        """Run `teardown()` in the gevent thread (at most `within` s), then end the thread."""
        with self._lock:
            if not self._accepting:
                hub = None
            else:
                self._accepting = False
                hub = self._hub
        if hub is not None:
            hub.loop.run_callback_threadsafe(self._spawn_stop, teardown, within)
        await self._join_thread()

    async def _join_thread(self) -> None:
        if self._thread is None or self._thread_done is None:
            return
        await self._thread_done
        await asyncio.to_thread(self._thread.join, 5.0)

    # --- calls (asyncio → gevent) -----------------------------------------------------------

    async def call(self, fn: Callable[..., T], *args: Any, within: float | None = None) -> T:
        """Run ``fn(*args)`` in a new greenlet of the gevent thread; await its result.

        With `within`, the greenlet is interrupted after that many seconds and `PbxError`
        is raised. Cancelling the awaiting task does not stop the greenlet.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            if not self._accepting:
                raise BridgeStopped(f"{self.name}: not running")
            self._hub.loop.run_callback_threadsafe(self._spawn_job, future, fn, args, within)
        return await future

    # --- posts (gevent → asyncio) -----------------------------------------------------------

    def post(self, fn: Callable[..., object], *args: Any) -> None:
        """From the gevent thread: run ``fn(*args)`` soon in the asyncio loop (in post order).
        Never waits (see `post_from_reader`)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with self._posts_lock:
            self._posted.append((fn, args))
            self.pending += 1
            self.peak_pending = max(self.peak_pending, self.pending)
            if self._drain_scheduled:
                return
            self._drain_scheduled = True
        try:
            loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop closed in between
            log.debug("%s: asyncio loop closed, dropping %r", self.name, fn)

    def post_from_reader(self, fn: Callable[..., object], *args: Any) -> None:
        """From a socket's reading greenlet: `post`, after waiting while `max_pending` posts
        are not run yet (other greenlets run meanwhile; the socket is not read)."""
        while True:
            with self._posts_lock:
                if self.pending < self.max_pending or self._room is None or not self._accepting:
                    break
                self._room.clear()
                self._room_wanted = True
            self._room.wait()
        self.post(fn, *args)

    def _drain(self) -> None:
        """Asyncio loop: run the posts in order, at most `DRAIN_BATCH` per loop iteration."""
        with self._posts_lock:
            count = min(len(self._posted), DRAIN_BATCH)
            batch = [self._posted.popleft() for _ in range(count)]
            more = bool(self._posted)
            self._drain_scheduled = more
        for fn, args in batch:
            self._run_posted(fn, args)
        with self._posts_lock:
            self.pending -= count
            wake = self._room_wanted and self.pending <= self.max_pending // 2
            if wake:
                self._room_wanted = False
        if wake:
            self._open_room()
        if more:
            loop = self._loop
            if loop is not None and not loop.is_closed():
                loop.call_soon(self._drain)

    def _open_room(self) -> None:
        """Let waiting readers post again (their gevent Event is set in the gevent thread)."""
        hub, room = self._hub, self._room
        if hub is not None and room is not None:
            try:
                hub.loop.run_callback_threadsafe(room.set)
            except Exception:  # the hub is being destroyed: its readers are gone
                log.debug("%s: gevent hub gone, readers not woken", self.name)

    @staticmethod
    def _run_posted(fn: Callable[..., object], args: tuple[Any, ...]) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("callback %r from the gevent thread failed", fn)

    # --- the gevent thread ------------------------------------------------------------------

    def _main(self, setup: Callable[[], T], ready: asyncio.Future[T], timeout: float) -> None:
        hub = gevent.get_hub()  # this thread's own hub
        self._hub = hub
        self._stopped = gevent.event.Event()
        self._room = gevent.event.Event()
        # An active watcher keeps the hub's loop alive while nothing else is pending, so work
        # handed over by run_callback_threadsafe always finds a running loop.
        keepalive = hub.loop.async_()
        keepalive.start(lambda: None)
        try:
            try:
                with gevent.Timeout(timeout, PbxError(f"{self.name}: start took over {timeout} s")):
                    result = setup()
            except Exception as exc:
                self._settle(ready, None, exc)
                return
            except BaseException as exc:  # gevent.Timeout without an exception, GreenletExit
                self._settle(ready, None, PbxError(f"{self.name}: start interrupted ({exc!r})"))
                return
            with self._lock:
                self._accepting = True
            self._settle(ready, result, None)
            self._stopped.wait()
        finally:
            with self._lock:
                self._accepting = False
            keepalive.close()
            try:
                hub.destroy(destroy_loop=True)
            except Exception:
                log.exception("%s: destroying the gevent hub failed", self.name)
            self._hub = None
            done = self._thread_done
            if done is not None:
                self._settle(done, None, None)

    def _settle(
        self, future: asyncio.Future[Any], result: Any, exc: BaseException | None
    ) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        def settle() -> None:
            if future.done():
                return
            if exc is not None:
                future.set_exception(exc)
            else:
                future.set_result(result)

        self.post(settle)  # behind the events posted before it (a reply after its events)

    def _spawn_job(
        self, future: asyncio.Future[Any], fn: Callable[..., Any], args: tuple[Any, ...],
        timeout: float | None,
    ) -> None:
        """Runs in the hub's callback: must not block; starts the job's greenlet, or queues
        the job while `max_jobs` run."""
        if len(self._jobs) >= self.max_jobs:
            self._queued_jobs.append((future, fn, args, timeout))
            return
        job = gevent.spawn(self._run_job, future, fn, args, timeout)
        self._jobs.add(job)
        self.peak_jobs = max(self.peak_jobs, len(self._jobs))
        job.link(self._job_ended)

    def _job_ended(self, job: Any) -> None:
        self._jobs.discard(job)
        if self._queued_jobs and self._accepting:
            self._spawn_job(*self._queued_jobs.popleft())

    def _run_job(
        self, future: asyncio.Future[Any], fn: Callable[..., Any], args: tuple[Any, ...],
        timeout: float | None,
    ) -> None:
        name = _name(fn)
        try:
            if timeout is None:
                result = fn(*args)
            else:
                with gevent.Timeout(timeout, PbxError(f"{name}: no answer within {timeout} s")):
                    result = fn(*args)
        except Exception as exc:
            self._settle(future, None, exc)
        except BaseException as exc:  # GreenletExit at stop
            self._settle(future, None, BridgeStopped(f"{self.name}: stopped during {name}"))
            if not isinstance(exc, gevent.GreenletExit):
                raise
        else:
            self._settle(future, result, None)

    def _spawn_stop(self, teardown: Callable[[], None] | None, timeout: float) -> None:
        gevent.spawn(self._run_stop, teardown, timeout)

    def _run_stop(self, teardown: Callable[[], None] | None, timeout: float) -> None:
        self._room.set()  # no reader waits for room any more (_accepting is False)
        try:
            if teardown is not None:
                with gevent.Timeout(timeout, PbxError(f"{self.name}: stop took over {timeout} s")):
                    teardown()
        except Exception:
            log.exception("%s: teardown failed", self.name)
        finally:
            queued, self._queued_jobs = list(self._queued_jobs), collections.deque()
            for future, fn, _args, _timeout in queued:
                self._settle(future, None,
                             BridgeStopped(f"{self.name}: stopped before {_name(fn)}"))
            gevent.killall(list(self._jobs), timeout=1.0)
            self._stopped.set()


def _name(fn: Callable[..., Any]) -> str:
    """A call's function, as its errors name it."""
    return str(getattr(fn, "__qualname__", repr(fn)))
