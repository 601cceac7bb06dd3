"""The inbound event socket connection that carries ``api`` commands, kept up.

FreeSWITCH closes it when it restarts, reloads mod_event_socket, or the network drops. Calls do
not depend on it: each runs on its own outbound socket, with its own events (recordings'
RECORD_START/STOP included). So when it is lost, `InboundApi` reconnects in the background with
exponential back-off (`retry_initial`, doubling up to `retry_max`), and an ``api`` command made
meanwhile waits for it at most `wait_when_down` seconds, then fails with `InboundDown` saying so
(``wait=False``: at once; a call's own commands then go over its own socket instead). A command
that was in flight when the connection dropped fails at once with `PbxError` (it may or may not
have run; it is not repeated). After a reconnect the driver's `on_reconnected` checks its calls.

The connection subscribes to no event until someone asks (`subscribe`: the driver does, for
BACKGROUND_JOB, before its first ``bgapi``); from then on every new connection subscribes to the
same events while it is set up, before it is used, and the events go to `on_event`.

The asyncio side owns all state; the gevent thread only runs `connect_inbound` and
`FramedInboundESL.api` on the connection object handed to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from adapter.pbx.base import PbxError
from adapter.pbx.freeswitch.bridge import BridgeStopped, GeventBridge
from adapter.pbx.freeswitch.escape import esl_header_value
from adapter.pbx.freeswitch.esl import FramedInboundESL, NotConnectedError, ParsedEvent
from adapter.pbx.freeswitch.protocol import EslEvent

__all__ = ["InboundApi", "InboundDown", "InboundSettings", "connect_inbound"]

log = logging.getLogger(__name__)


class InboundDown(PbxError):
    """The inbound connection is down (being re-established); the command was not sent."""


@dataclass(frozen=True, slots=True)
class InboundSettings:
    host: str
    port: int
    password: str
    connect_timeout: float = 10.0
    command_timeout: float = 10.0
    retry_initial: float = 0.2
    retry_max: float = 10.0
    wait_when_down: float = 5.0


def connect_inbound(
    settings: InboundSettings,
    on_closed: Callable[[FramedInboundESL], None],
    events: tuple[str, ...] = (),
    on_event: Callable[[ParsedEvent], None] | None = None,
) -> tuple[FramedInboundESL, str]:
    """Gevent thread: connect, authenticate, check ``api status`` says ready, subscribe to
    `events` (handed to `on_event`, if any); returns the connection and that status.
    `on_closed(connection)` runs (in the gevent thread) when it is lost later."""
    esl = FramedInboundESL(settings.host, settings.port, settings.password,
                           timeout=settings.connect_timeout)
    esl.command_timeout = settings.command_timeout
    try:
        esl.connect()
        status = esl.api("status")
        if "is ready" not in status:
            raise PbxError(f"FreeSWITCH is not ready: {status.strip()[:200]!r}")
        if events and on_event is not None:
            esl.subscribe(events, on_event)
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


def _subscribe(esl: FramedInboundESL, events: tuple[str, ...],
               handler: Callable[[ParsedEvent], None]) -> str:
    def run() -> str:
        esl.subscribe(events, handler)
        return ""

    return _lost_during(run)


class InboundApi:
    """``api`` commands over the inbound connection, reconnecting when it is lost."""

    def __init__(
        self,
        bridge: GeventBridge,
        settings: InboundSettings,
        *,
        on_reconnected: Callable[[], Awaitable[None]] | None = None,
        on_event: Callable[[EslEvent], None] | None = None,
    ) -> None:
        """`on_event(event)` gets the subscribed events (`subscribe`), in the asyncio loop."""
        self.settings = settings
        self._bridge = bridge
        self._on_reconnected = on_reconnected
        self._on_event = on_event
        self._events: tuple[str, ...] = ()  # what every connection subscribes to
        self._subscribed: FramedInboundESL | None = None  # the connection that did
        self._esl: FramedInboundESL | None = None
        self._up = asyncio.Event()
        self._down = asyncio.Event()
        self._stopping = False
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
        """For `connect_inbound` (gevent thread): tell the asyncio side about the loss."""
        self._bridge.post(self._lost, esl)

    def event_handler(self, event: ParsedEvent) -> None:
        """For `connect_inbound` (gevent thread): hand a subscribed event to the asyncio side."""
        if self._on_event is not None:
            self._bridge.post(self._on_event, event.event)

    @property
    def events(self) -> tuple[str, ...]:
        """The events a new connection subscribes to while it is set up."""
        return self._events

    def attach(self, esl: FramedInboundESL) -> None:
        """Use `esl` (connected by `connect_inbound` with `on_closed_handler`, and subscribed
        to `events`)."""
        self._esl = esl
        self._subscribed = esl if self._events else None
        self._down.clear()
        self._up.set()

    async def _connection(self, wait: bool) -> FramedInboundESL:
        if self._stopping:
            raise InboundDown("the FreeSWITCH driver is stopping")
        if not self._up.is_set() and wait:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._up.wait(), self.settings.wait_when_down)
        esl = self._esl
        if esl is None or not self._up.is_set():
            raise InboundDown(
                "the inbound event socket connection to FreeSWITCH is down; reconnecting "
                f"({self.reconnect_attempts} attempt(s) so far)")
        return esl

    async def api(self, command: str, *, wait: bool = True) -> str:
        """One ``api`` command; its raw reply text. While reconnecting it waits (at most
        `wait_when_down` s; not at all with ``wait=False``), then raises `InboundDown`."""
        esl_header_value(command, field="api command")
        esl = await self._connection(wait)
        return await self._bridge.call(_api, esl, command,
                                       within=self.settings.command_timeout + 1.0)

    async def bgapi(self, command: str, *, job_uuid: str) -> str:
        """One ``bgapi`` command with our `job_uuid` (its result comes as a BACKGROUND_JOB
        event: `subscribe` first); the reply text, ``+OK Job-UUID: <job_uuid>``. Waits for a
        lost connection as `api` does."""
        esl_header_value(command, field="bgapi command")
        esl_header_value(job_uuid, field="Job-UUID")
        esl = await self._connection(True)
        return await self._bridge.call(_bgapi, esl, command, job_uuid,
                                       within=self.settings.command_timeout + 1.0)

    async def subscribe(self, events: tuple[str, ...]) -> None:
        """Subscribe to `events` (fixed names) on this connection and every later one; events go
        to `on_event`. Nothing is sent when the connection already has."""
        wanted = tuple(dict.fromkeys(self._events + events))
        esl = await self._connection(True)
        if wanted == self._events and self._subscribed is esl:
            return
        self._events = wanted
        await self._bridge.call(_subscribe, esl, wanted, self.event_handler,
                                within=self.settings.command_timeout + 1.0)
        if self._esl is esl:
            self._subscribed = esl

    async def detach(self) -> FramedInboundESL | None:
        """Stop reconnecting; returns the connection (to be closed in the gevent thread)."""
        self._stopping = True
        self._up.clear()
        task, self._reconnecting = self._reconnecting, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, PbxError):
                await task
        esl, self._esl = self._esl, None
        if esl is not None:
            esl.on_closed = None
        return esl

    # --- reconnecting -----------------------------------------------------------------------

    def _lost(self, esl: FramedInboundESL) -> None:
        if esl is not self._esl or self._stopping:
            return  # an old connection, or we are closing it ourselves
        self._esl = None
        self._up.clear()
        self._down.set()
        self.reconnect_attempts = 0
        log.error("FreeSWITCH closed the inbound event socket connection; reconnecting "
                  "(calls go on over their own sockets)")
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        try:
            esl = await self._connect_with_backoff()
        finally:
            self._reconnecting = None  # a loss from now on starts a new reconnect
        if esl is None:
            return
        self.attach(esl)
        self.reconnects += 1
        log.info("reconnected to FreeSWITCH's event socket after %d attempt(s)",
                 self.reconnect_attempts)
        if self._on_reconnected is not None:
            try:
                await self._on_reconnected()
            except Exception:
                log.exception("checking the calls after reconnecting failed")

    async def _connect_with_backoff(self) -> FramedInboundESL | None:
        s = self.settings
        delay = s.retry_initial
        while not self._stopping:
            await asyncio.sleep(delay)  # back-off between attempts
            self.reconnect_attempts += 1
            try:
                esl, _status = await self._bridge.call(
                    connect_inbound, s, self.on_closed_handler, self._events,
                    self.event_handler, within=s.connect_timeout + 1.0)
            except BridgeStopped:
                return None
            except PbxError as exc:
                log.warning("reconnecting to FreeSWITCH's event socket (attempt %d): %s",
                            self.reconnect_attempts, exc)
                delay = min(delay * 2, s.retry_max)
                continue
            if self._stopping:
                with contextlib.suppress(PbxError):
                    await self._bridge.call(esl.stop)
                return None
            return esl
        return None
