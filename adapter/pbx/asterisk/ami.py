"""The AMI connection (panoramisk) and AsyncAGI command routing over it.

panoramisk frames and parses AMI; this module adds what the adapter needs on top:
- login with a timeout and a clear error (`adapter.startup_errors`: unreachable, login
  refused, a write privilege missing), without panoramisk's reconnect chatter meanwhile;
- framing on bytes, bounded, decoded per whole frame (`ami_protocol.FramedAmiProtocol`);
- only the events some handler reads: at each login one ``Filter`` action lets through exactly
  those names (`event_filter`), so Asterisk neither writes nor the adapter parses the rest
  (of the 25 events of a recorded test call, 13);
- every action's header values checked by `escape.ami_header_value` before sending;
- AsyncAGI commands correlated by the `CommandID` we generate. panoramisk 1.4's own
  `send_agi_command` never resolves on Asterisk 22 (it waits for an Asterisk 11 style reply and
  swallows the event), so we send the `AGI` action ourselves and match the later
  ``AsyncAGIExec`` event on its ``CommandId`` header.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from panoramisk import Manager
from panoramisk.actions import Action

from adapter.pbx.asterisk.agi import AgiReply, parse_agi_reply
from adapter.pbx.asterisk.ami_protocol import FramedAmiProtocol
from adapter.pbx.asterisk.escape import ami_header_value
from adapter.pbx.base import CallGone, ChannelGone, PbxError
from adapter.startup_errors import (
    AmiLoginRefused,
    AmiPrivilegesMissing,
    AmiUnreachable,
    reason,
)

__all__ = ["AmiClient", "AmiMessage", "EventHandler", "event_filter"]

log = logging.getLogger(__name__)

AmiMessage = Mapping[str, str]
EventHandler = Callable[[AmiMessage], None]

# The Message of an action's ``Response: Error`` when Asterisk does not know the channel
# (manager.c, app_mixmonitor.c: "No such channel"), compared in lower case.
_NO_SUCH_CHANNEL = "no such channel"

# One action per write class the adapter needs, each sent without the header it requires:
# Asterisk checks the privilege first ("Permission denied") and only then the headers
# ("Channel not specified"), so none of them does anything. Filter (system) is harmless too.
_WRITE_PROBES: tuple[tuple[str, dict[str, str]], ...] = (
    ("system", {"Action": "Filter", "Operation": "Add", "Filter": "!Event: TestEvent"}),
    ("call", {"Action": "Redirect"}),
    ("agi", {"Action": "AGI"}),
    ("originate", {"Action": "Originate"}),
)

# Events this client reads itself, whatever handlers are registered: the replies of AGI
# commands, and the greeting of every login.
_OWN_EVENTS = ("AsyncAGIExec", "FullyBooted")
_EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")


def event_filter(names: Iterable[str]) -> str:
    """The ``Filter`` of an include filter letting through exactly the events called `names`.

    Asterisk matches it, a POSIX extended regular expression, against each event's whole text,
    which starts ``Event: <name>`` and a CR: anchored at the start and ended by that white
    space, ``Hangup`` does not also let ``HangupRequest`` through (lab notes §6). The same
    filter works on every Asterisk since 10 (the advanced ``MatchCriteria`` of recent releases,
    present in the lab's 22.10, are not needed). ValueError for a name that is not a plain
    event name."""
    unique = sorted(set(names))
    if not unique:
        raise ValueError("an event filter needs at least one event name")
    for name in unique:
        _check_event_name(name)
    return f"^Event: ({'|'.join(unique)})[[:space:]]"


def _check_event_name(name: str) -> None:
    if not _EVENT_NAME.fullmatch(name):
        raise ValueError(f"not an AMI event name: {name!r}")


class _Quiet(logging.Filter):
    """Drops panoramisk's records above DEBUG while `active` (its "Connection lost" and
    reconnect notes during the first login: a failure there is reported once, by
    `AmiClient.connect`)."""

    active = True

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.active or record.levelno <= logging.DEBUG


class _Manager(Manager):  # type: ignore[misc]
    """panoramisk's Manager that stays closed once `closed` (no reconnect scheduled earlier
    comes back), and that ignores a connection attempt cancelled by our timeout."""

    closed = False
    _wildcards: frozenset[str] = frozenset()  # registered patterns that need fnmatch, but '*'

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._scheduled: set[asyncio.Future[Any]] = set()  # coroutines callbacks returned
        super().__init__(*args, **kwargs)

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        if self.closed:
            return None
        return super().connect(*args, **kwargs)

    def dispatch(self, event: Any) -> Any:
        """panoramisk's dispatch, the same callbacks in the same order, without a regular
        expression per pattern and event where the pattern has no wildcard (``'*'``, which
        matches every event, and panoramisk's own ``FullyBooted``): a string comparison."""
        event.manager = self
        name = event.get("event") or ""
        matches = []
        for pattern, regexp in self.patterns:
            if pattern == "*" or pattern == name or (
                    pattern in self._wildcards and regexp.match(name) is not None):
                matches.append(pattern)
                for callback in self.callbacks[pattern]:
                    ret = callback(self, event)
                    if asyncio.iscoroutine(ret) or isinstance(ret, asyncio.Future):
                        task = asyncio.ensure_future(ret, loop=self.loop)
                        self._scheduled.add(task)  # kept referenced until it is done
                        task.add_done_callback(self._scheduled.discard)
        return matches

    def register_event(self, pattern: str, callback: Any = None) -> Any:
        if pattern != "*" and any(c in pattern for c in "*?["):
            self._wildcards = self._wildcards | {pattern}
        return super().register_event(pattern, callback)

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        if f.cancelled():
            return
        if self.closed:
            if f.exception() is None:
                f.result()[0].close()
            return
        super().connection_made(f)


class AmiClient:
    """One logged-in AMI session."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        secret: str,
        connect_timeout: float = 10.0,
    ) -> None:
        self._quiet = _Quiet()
        panoramisk_log = logging.getLogger("adapter.pbx.asterisk.panoramisk")
        panoramisk_log.addFilter(self._quiet)
        self._manager = _Manager(
            host=host,
            port=port,
            username=username,
            secret=secret,
            events="on",
            ping_delay=10,
            reconnect_timeout=2,
            log=panoramisk_log,
            # Bytes are decoded per whole frame, with bounds (see ami_protocol).
            protocol_factory=FramedAmiProtocol,
        )
        self._connect_timeout = connect_timeout
        self._logged_in = asyncio.Event()
        self._login_failed: str | None = None
        self._handlers: dict[str, list[EventHandler]] = {}
        self._event_names: set[str] = set(_OWN_EVENTS)  # as Asterisk spells them
        self._filtering = False  # the first login has set the event filter
        self.events_filtered = asyncio.Event()
        """Set once this login's event filter is in place; cleared when the connection is lost
        (the next login's session starts without it)."""
        self._refilter: asyncio.Task[None] | None = None
        self._agi_waiters: dict[str, tuple[str, asyncio.Future[AgiReply]]] = {}
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(4)
        self._manager.on_login = self._on_login
        self._manager.on_disconnect = self._on_disconnect
        self._manager.register_event("*", self._dispatch)
        self.address = f"{host}:{port}"
        self._host, self._port, self._username = host, port, username

    # --- connection -------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect, log in, check the write privileges; `AmiUnreachable`, `AmiLoginRefused` or
        `AmiPrivilegesMissing` (everything closed) if that fails."""
        try:
            try:
                await asyncio.wait_for(self._manager.connect(), self._connect_timeout)
                auth = self._manager.authenticated_future
                if auth is not None:
                    answer = await asyncio.wait_for(asyncio.shield(auth),
                                                    self._connect_timeout)
                    if not answer.success:
                        raise AmiLoginRefused(self._host, self._port, self._username,
                                              str(answer.get("Message") or "Response: Error"))
                await asyncio.wait_for(self._logged_in.wait(), self._connect_timeout)
            except (OSError, TimeoutError) as exc:
                raise AmiUnreachable(self._host, self._port, reason(exc)) from exc
            if not self._manager.authenticated:
                raise AmiLoginRefused(self._host, self._port, self._username, "not logged in")
            await self._check_privileges()
            await self._filter_events()
        except BaseException:
            self._stop_manager()
            raise
        finally:
            self._quiet.active = False
            logging.getLogger("adapter.pbx.asterisk.panoramisk").removeFilter(self._quiet)

    async def _check_privileges(self) -> None:
        missing: list[str] = []
        for name, headers in _WRITE_PROBES:
            reply = await asyncio.wait_for(
                self._manager.send_action(Action({**headers, "ActionID": self._next_id("chk")}),
                                          as_list=False),
                self._connect_timeout)
            if isinstance(reply, list):
                reply = reply[0]
            if reply.get("Message") == "Permission denied":
                missing.append(name)
        if missing:
            raise AmiPrivilegesMissing(self._host, self._port, self._username, tuple(missing))

    def _stop_manager(self) -> None:
        self._manager.closed = True
        self._manager.close()

    @property
    def connected(self) -> bool:
        """Logged in on a connection that is up (panoramisk's own state)."""
        manager = self._manager
        return (not manager.closed and self._logged_in.is_set()
                and bool(getattr(manager, "_connected", False)) and bool(manager.authenticated))

    async def close(self) -> None:
        self._stop_manager()
        if self._refilter is not None:
            self._refilter.cancel()
        for _channel, waiter in list(self._agi_waiters.values()):
            if not waiter.done():
                waiter.set_exception(PbxError("AMI connection closed"))
        self._agi_waiters.clear()

    def _on_disconnect(self, _manager: Any, _exc: BaseException | None) -> None:
        self.events_filtered.clear()

    def _on_login(self, _manager: Any) -> None:
        self._logged_in.set()
        if self._filtering and not self._manager.closed:
            # A re-login: Asterisk's new session has no filter yet (filters are per session).
            self._refilter = asyncio.get_running_loop().create_task(self._filter_again())

    async def _filter_events(self) -> None:
        """Let through only the events a handler (or this client) reads: one include filter
        (`event_filter`). The events before it are dispatched as usual."""
        self._filtering = True
        await self.action({"Action": "Filter", "Operation": "Add",
                           "Filter": event_filter(self._event_names)})
        self.events_filtered.set()

    async def _filter_again(self) -> None:
        try:
            await self._filter_events()
        except Exception as exc:  # a refused Filter, or the connection lost again
            # Every event then arrives, as before the first filter: more work, nothing lost.
            log.warning("AMI: the event filter was not set again after the re-login: %s", exc)

    # --- actions and events -----------------------------------------------------------------

    async def action(self, headers: Mapping[str, str | Sequence[str]]) -> AmiMessage:
        """Send one action; returns its Response. Raises PbxError on ``Response: Error``:
        `ChannelGone` when Asterisk does not know the channel named."""
        checked: dict[str, str | list[str]] = {}
        for key, value in headers.items():
            ami_header_value(key, field="header name")
            if isinstance(value, str):
                checked[key] = ami_header_value(value, field=key)
            else:
                checked[key] = [ami_header_value(v, field=key) for v in value]
        checked.setdefault("ActionID", self._next_id("act"))
        reply = await self._manager.send_action(Action(checked), as_list=False)
        if isinstance(reply, list):
            reply = reply[0]
        if reply.get("Response") == "Error":
            message = reply.get("Message", "error")
            error = ChannelGone if _NO_SUCH_CHANNEL in message.lower() else PbxError
            raise error(f"AMI {checked.get('Action')}: {message}")
        return reply  # type: ignore[no-any-return]

    def on(self, event: str, handler: EventHandler) -> None:
        """Call `handler` (synchronously, in the loop) for every event of that name, spelled as
        Asterisk spells it (the event filter compares names exactly). Handlers of events other
        than `_OWN_EVENTS` are registered before `connect`, which filters for them:
        RuntimeError after it."""
        if event not in self._event_names:
            if self._filtering:
                raise RuntimeError(f"AMI event {event} registered after the event filter")
            _check_event_name(event)
            self._event_names.add(event)
        self._handlers.setdefault(event.lower(), []).append(handler)

    def _dispatch(self, _manager: Any, message: AmiMessage) -> None:
        name = (message.get("Event") or "").lower()
        if name == "asyncagiexec":
            self._resolve_agi(message)
        for handler in self._handlers.get(name, ()):
            try:
                handler(message)
            except Exception:
                log.exception("AMI event handler failed for %s", message.get("Event"))

    def _next_id(self, kind: str) -> str:
        return f"twiml-{self._id_prefix}-{kind}-{next(self._ids)}"

    # --- AsyncAGI ---------------------------------------------------------------------------

    async def agi(self, channel: str, command: str) -> AgiReply:
        """Run one AGI command on a channel that sits in ``AGI(agi:async)``; wait for its reply.

        Raises CallGone if the channel hangs up or leaves AsyncAGI first.
        """
        command_id = self._next_id("agi")
        waiter: asyncio.Future[AgiReply] = asyncio.get_running_loop().create_future()
        self._agi_waiters[command_id] = (channel, waiter)
        try:
            try:
                await self.action(
                    {"Action": "AGI", "Channel": channel, "Command": command,
                     "CommandID": command_id}
                )
            except PbxError as exc:
                raise CallGone(f"{channel}: {exc}") from exc
            reply = await waiter
        finally:
            self._agi_waiters.pop(command_id, None)
        log.debug("AGI %s on %s -> %s", command, channel, reply.text)
        if reply.code == 511:
            raise CallGone(f"{channel}: {reply.text}")
        return reply

    def _resolve_agi(self, message: AmiMessage) -> None:
        command_id = message.get("CommandId") or message.get("CommandID") or ""
        entry = self._agi_waiters.get(command_id)
        if entry is None:
            return
        _channel, waiter = entry
        if not waiter.done():
            waiter.set_result(parse_agi_reply(message.get("Result") or ""))

    def channel_gone(self, channel: str) -> None:
        """Fail every AGI command still waiting on `channel` (it hung up or left AsyncAGI)."""
        for command_id, (chan, waiter) in list(self._agi_waiters.items()):
            if chan == channel and not waiter.done():
                waiter.set_exception(CallGone(f"{channel} left AsyncAGI"))
                with contextlib.suppress(KeyError):
                    del self._agi_waiters[command_id]
