"""The inbound event socket connection that carries ``api`` commands, kept up.

FreeSWITCH closes it when it restarts, reloads mod_event_socket, or the network drops. Calls do
not depend on it: each runs on its own outbound socket, with its own events (recordings'
RECORD_START/STOP included). So when it is lost, `InboundApi` reconnects in the background with
exponential back-off (`reconnect_initial`, doubling up to `reconnect_max`), and an ``api``
command made meanwhile waits for it at most `api_wait` seconds, then fails with `InboundDown`
saying so (``wait=False``: at once; a call's own commands then go over its own socket instead).
A command that was in flight when the connection dropped fails at once with `PbxError` (it may
or may not have run; it is not repeated). After a reconnect the driver's `on_reconnected`
checks its calls.

The connection subscribes to no event until someone asks (`watch`: the outbound calls do, while
one waits for its answer). What is asked for is a `Watch`: event filters and event names. It is
brought onto the connection in an order that never lets an unfiltered event through: new
filters first, then new events, then ``nixevent`` of the events no longer wanted, then the
filters no longer wanted deleted (with no filter left, mod_event_socket passes every subscribed
event). A new connection gets the current `Watch` while it is set up, before it is used, and
the events go to `on_event`.

The asyncio side owns all state; the gevent thread only runs `connect_inbound` and
`FramedInboundESL.api` on the connection object handed to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from adapter.pbx.base import PbxError
from adapter.pbx.freeswitch import mapping
from adapter.pbx.freeswitch.bridge import BridgeStopped, GeventBridge
from adapter.pbx.freeswitch.escape import esl_header_value
from adapter.pbx.freeswitch.esl import FramedInboundESL, NotConnectedError, ParsedEvent
from adapter.pbx.freeswitch.protocol import EslEvent
from adapter.pbx.freeswitch.settings import FreeSwitchSettings
from adapter.startup_errors import EslNotReady
from adapter.tasks import TaskSet

__all__ = ["InboundApi", "InboundDown", "Watch", "connect_inbound"]

log = logging.getLogger(__name__)


class InboundDown(PbxError):
    """The inbound connection is down (being re-established); the command was not sent."""


@dataclass(frozen=True, slots=True)
class Watch:
    """What the inbound connection receives: `events` (names), narrowed by `filters`
    (``(header, value)``: an event passes if one matches; `mapping.event_filter`). Events
    are only ever wanted together with at least one filter."""

    filters: tuple[tuple[str, str], ...] = ()
    events: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.events and not self.filters:
            raise ValueError("the inbound connection never subscribes to unfiltered events")


NOTHING = Watch()


def connect_inbound(
    settings: FreeSwitchSettings,
    on_closed: Callable[[FramedInboundESL], None],
    watch: Watch = NOTHING,
    on_event: Callable[[ParsedEvent], None] | None = None,
) -> tuple[FramedInboundESL, str]:
    """Gevent thread: connect, authenticate, check ``api status`` says ready, apply `watch`
    (filters, then events handed to `on_event`); returns the connection and that status.
    `on_closed(connection)` runs (in the gevent thread) when it is lost later."""
    esl = FramedInboundESL(settings.esl_host, settings.esl_port, settings.esl_password,
                           timeout=settings.connect_timeout)
    esl.command_timeout = settings.command_timeout
    try:
        esl.connect()
        status = esl.api("status")
        if "is ready" not in status:
            raise EslNotReady(settings.esl_host, settings.esl_port, status.strip()[:200])
        if on_event is not None:
            for header, value in watch.filters:
                esl.command(mapping.event_filter(header, value))
            if watch.events:
                esl.subscribe(watch.events, on_event)
        esl.on_closed = lambda: on_closed(esl)
        if not esl.connected:
            raise PbxError("FreeSWITCH closed the event socket during set-up")
    except NotConnectedError as exc:
        esl.stop()
        raise PbxError(f"FreeSWITCH event socket: {exc or 'connection lost'}") from exc
    except BaseException:
        esl.on_closed = None
        esl.stop()
        raise
    return esl, status


def _lost_during(command: Callable[[], str]) -> str:
    try:
        return command()
    except NotConnectedError as exc:
        raise PbxError("the inbound event socket connection was lost during the command "
                       "(it is not repeated)") from exc


def _api(esl: FramedInboundESL, command: str) -> str:
    return _lost_during(lambda: esl.api(command))


def _bgapi(esl: FramedInboundESL, command: str, job_uuid: str) -> str:
    return _lost_during(lambda: esl.bgapi(command, job_uuid))


def _command(esl: FramedInboundESL, text: str) -> str:
    return _lost_during(lambda: esl.command(text))


def _subscribe(esl: FramedInboundESL, events: tuple[str, ...],
               handler: Callable[[ParsedEvent], None]) -> str:
    def run() -> str:
        esl.subscribe(events, handler)
        return ""

    return _lost_during(run)


@dataclass(slots=True)
class _Applied:
    """What one connection has been given so far (kept up to date command by command)."""

    esl: FramedInboundESL
    filters: list[tuple[str, str]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)


class InboundApi:
    """``api`` commands over the inbound connection, reconnecting when it is lost."""

    def __init__(
        self,
        bridge: GeventBridge,
        settings: FreeSwitchSettings,
        *,
        on_reconnected: Callable[[], Awaitable[None]] | None = None,
        on_event: Callable[[EslEvent], None] | None = None,
    ) -> None:
        """`on_event(event)` gets the events asked for (`watch`), in the asyncio loop."""
        self.settings = settings
        self._bridge = bridge
        self._on_reconnected = on_reconnected
        self._on_event = on_event
        self._wanted = NOTHING  # what the connection should receive (`watch`)
        self._applied: _Applied | None = None  # what the current connection has been given
        self._watch_lock = asyncio.Lock()
        self._esl: FramedInboundESL | None = None
        self._up = asyncio.Event()
        self._down = asyncio.Event()
        self._stopping = False
        self._tasks = TaskSet("freeswitch-inbound")
        self._reconnecting: asyncio.Task[None] | None = None
        self.reconnect_attempts = 0  # attempts since the connection was last lost
        self.reconnects = 0  # successful reconnections since start

    @property
    def up(self) -> bool:
        return self._up.is_set()

    async def wait_up(self) -> None:
        await self._up.wait()

    async def wait_down(self) -> None:
        """Until the connection is (noticed as) lost."""
        await self._down.wait()

    def on_closed_handler(self, esl: FramedInboundESL) -> None:
        """For `connect_inbound` (the reading greenlet's end): tell the asyncio side about
        the loss, behind the events read before it and within their bound."""
        self._bridge.post_from_reader(self._lost, esl)

    def event_handler(self, event: ParsedEvent) -> None:
        """For `connect_inbound` (gevent thread): hand a subscribed event to the asyncio side."""
        if self._on_event is not None:
            self._bridge.post_from_reader(self._on_event, event.event)

    @property
    def wanted(self) -> Watch:
        """What a new connection is given while it is set up."""
        return self._wanted

    def attach(self, esl: FramedInboundESL, applied: Watch = NOTHING) -> None:
        """Use `esl` (connected by `connect_inbound` with `on_closed_handler`, and given
        `applied`)."""
        self._esl = esl
        self._applied = _Applied(esl, list(applied.filters), list(applied.events))
        self._down.clear()
        self._up.set()

    async def _connection(self, wait: bool) -> FramedInboundESL:
        if self._stopping:
            raise InboundDown("the FreeSWITCH driver is stopping")
        if not self._up.is_set() and wait:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._up.wait(), self.settings.api_wait)
        esl = self._esl
        if esl is None or not self._up.is_set():
            raise InboundDown(
                "the inbound event socket connection to FreeSWITCH is down; reconnecting "
                f"({self.reconnect_attempts} attempt(s) so far)")
        return esl

    async def api(self, command: str, *, wait: bool = True) -> str:
        """One ``api`` command; its raw reply text. While reconnecting it waits (at most
        `api_wait` s; not at all with ``wait=False``), then raises `InboundDown`."""
        esl_header_value(command, field="api command")
        esl = await self._connection(wait)
        return await self._bridge.call(_api, esl, command,
                                       within=self.settings.command_timeout + 1.0)

    async def bgapi(self, command: str, *, job_uuid: str) -> str:
        """One ``bgapi`` command with our `job_uuid` (its result comes as a BACKGROUND_JOB
        event: `watch` it first); the reply text, ``+OK Job-UUID: <job_uuid>``. Waits for a
        lost connection as `api` does."""
        esl_header_value(command, field="bgapi command")
        esl_header_value(job_uuid, field="Job-UUID")
        esl = await self._connection(True)
        return await self._bridge.call(_bgapi, esl, command, job_uuid,
                                       within=self.settings.command_timeout + 1.0)

    async def watch(self, wanted: Watch, *, wait: bool = True) -> None:
        """Receive `wanted` from now on, on this connection and every later one (events go to
        `on_event`). Sends only the differences. While the connection is down it waits as `api`
        does and then raises `InboundDown`; with ``wait=False`` it returns at once instead (a
        new connection is given `wanted` when it is set up)."""
        self._wanted = wanted
        async with self._watch_lock:
            try:
                esl = await self._connection(wait)
            except InboundDown:
                if wait:
                    raise
                return
            await self._bring_up_to_date(esl)

    async def _bring_up_to_date(self, esl: FramedInboundESL) -> None:
        """Give `esl` the filters and events `_wanted` has and it lacks, then take away what it
        has and `_wanted` no longer has, in the order that keeps every event filtered."""
        applied = self._applied
        if applied is None or applied.esl is not esl:
            return  # a connection being replaced: the new one is set up with `_wanted`
        wanted = self._wanted
        within = self.settings.command_timeout + 1.0
        for item in [f for f in wanted.filters if f not in applied.filters]:
            await self._bridge.call(_command, esl, mapping.event_filter(*item), within=within)
            applied.filters.append(item)
        new_events = tuple(e for e in wanted.events if e not in applied.events)
        if new_events:
            await self._bridge.call(_subscribe, esl, new_events, self.event_handler,
                                    within=within)
            applied.events += new_events
        old_events = tuple(e for e in applied.events if e not in wanted.events)
        if old_events:
            await self._bridge.call(_command, esl, mapping.event_unsubscribe(old_events),
                                    within=within)
            applied.events = [e for e in applied.events if e not in old_events]
        for item in [f for f in applied.filters if f not in wanted.filters]:
            await self._bridge.call(_command, esl, mapping.event_filter_delete(*item),
                                    within=within)
            applied.filters.remove(item)

    async def detach(self) -> FramedInboundESL | None:
        """Stop reconnecting; returns the connection (to be closed in the gevent thread)."""
        self._stopping = True
        self._up.clear()
        self._reconnecting = None
        await self._tasks.cancel_all()
        esl, self._esl = self._esl, None
        self._applied = None
        if esl is not None:
            esl.on_closed = None
        return esl

    # --- reconnecting -----------------------------------------------------------------------

    def _lost(self, esl: FramedInboundESL) -> None:
        if esl is not self._esl or self._stopping:
            return  # an old connection, or we are closing it ourselves
        self._esl = None
        self._applied = None
        self._up.clear()
        self._down.set()
        self.reconnect_attempts = 0
        log.error("FreeSWITCH closed the inbound event socket connection; reconnecting "
                  "(calls go on over their own sockets)")
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = self._tasks.spawn(self._reconnect(), "reconnect")

    async def _reconnect(self) -> None:
        try:
            connected = await self._connect_with_backoff()
        finally:
            self._reconnecting = None  # a loss from now on starts a new reconnect
        if connected is None:
            return
        esl, applied = connected
        self.attach(esl, applied)
        self.reconnects += 1
        log.info("reconnected to FreeSWITCH's event socket after %d attempt(s)",
                 self.reconnect_attempts)
        try:  # what `watch` changed while the connection was being set up
            async with self._watch_lock:
                await self._bring_up_to_date(esl)
        except PbxError as exc:
            log.warning("updating the inbound connection's events after reconnecting: %s", exc)
        if self._on_reconnected is not None:
            try:
                await self._on_reconnected()
            except Exception:
                log.exception("checking the calls after reconnecting failed")

    async def _connect_with_backoff(self) -> tuple[FramedInboundESL, Watch] | None:
        s = self.settings
        delay = s.reconnect_initial
        while not self._stopping:
            await asyncio.sleep(delay)  # back-off between attempts
            self.reconnect_attempts += 1
            wanted = self._wanted
            try:
                esl, _status = await self._bridge.call(
                    connect_inbound, s, self.on_closed_handler, wanted,
                    self.event_handler, within=s.connect_timeout + 1.0)
            except BridgeStopped:
                return None
            except PbxError as exc:
                log.warning("reconnecting to FreeSWITCH's event socket (attempt %d): %s",
                            self.reconnect_attempts, exc)
                delay = min(delay * 2, s.reconnect_max)
                continue
            if self._stopping:
                with contextlib.suppress(PbxError):
                    await self._bridge.call(esl.stop)
                return None
            return esl, wanted
        return None
