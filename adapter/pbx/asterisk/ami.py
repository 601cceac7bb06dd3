"""The AMI connection (panoramisk) and AsyncAGI command routing over it.

panoramisk frames and parses AMI; this module adds what the adapter needs on top:
- login with a timeout and a clear error;
- framing on bytes, bounded, decoded per whole frame (`ami_protocol.FramedAmiProtocol`);
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
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from panoramisk import Manager
from panoramisk.actions import Action

from adapter.pbx.asterisk.agi import AgiReply, parse_agi_reply
from adapter.pbx.asterisk.ami_protocol import FramedAmiProtocol
from adapter.pbx.asterisk.escape import ami_header_value
from adapter.pbx.base import CallGone, PbxError

__all__ = ["AmiClient", "AmiMessage", "EventHandler"]

log = logging.getLogger(__name__)

AmiMessage = Mapping[str, str]
EventHandler = Callable[[AmiMessage], None]


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
        self._manager = Manager(
            host=host,
            port=port,
            username=username,
            secret=secret,
            events="on",
            ping_delay=10,
            reconnect_timeout=2,
            log=logging.getLogger("adapter.pbx.asterisk.panoramisk"),
            # Bytes are decoded per whole frame, with bounds (see ami_protocol).
            protocol_factory=FramedAmiProtocol,
        )
        self._connect_timeout = connect_timeout
        self._logged_in = asyncio.Event()
        self._login_failed: str | None = None
        self._handlers: dict[str, list[EventHandler]] = {}
        self._agi_waiters: dict[str, tuple[str, asyncio.Future[AgiReply]]] = {}
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(4)
        self._manager.on_login = self._on_login
        self._manager.register_event("*", self._dispatch)
        self.address = f"{host}:{port}"

    # --- connection -------------------------------------------------------------------------

    async def connect(self) -> None:
        try:
            await asyncio.wait_for(self._manager.connect(), self._connect_timeout)
            auth = self._manager.authenticated_future
            if auth is not None:
                await asyncio.wait_for(asyncio.shield(auth), self._connect_timeout)
            await asyncio.wait_for(self._logged_in.wait(), self._connect_timeout)
        except (OSError, TimeoutError) as exc:
            self._manager.close()
            raise PbxError(f"AMI at {self.address}: cannot connect and log in ({exc!r})") from exc
        if not self._manager.authenticated:
            self._manager.close()
            raise PbxError(f"AMI at {self.address}: login refused (check username and secret)")
        await self._reduce_event_volume()

    async def close(self) -> None:
        self._manager.close()
        for _channel, waiter in list(self._agi_waiters.values()):
            if not waiter.done():
                waiter.set_exception(PbxError("AMI connection closed"))
        self._agi_waiters.clear()

    def _on_login(self, _manager: Any) -> None:
        self._logged_in.set()

    async def _reduce_event_volume(self) -> None:
        """Ask Asterisk not to send event classes the adapter never reads (see lab notes §6)."""
        for name in ("Newexten", "VarSet", "TestEvent", "RTCPSent", "RTCPReceived"):
            await self.action(
                {"Action": "Filter", "Operation": "Add",
                 "Filter": f"!Event: {name}"}
            )

    # --- actions and events -----------------------------------------------------------------

    async def action(self, headers: Mapping[str, str | Sequence[str]]) -> AmiMessage:
        """Send one action; returns its Response. Raises PbxError on ``Response: Error``."""
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
            raise PbxError(f"AMI {checked.get('Action')}: {reply.get('Message', 'error')}")
        return reply  # type: ignore[no-any-return]

    def on(self, event: str, handler: EventHandler) -> None:
        """Call `handler` (synchronously, in the loop) for every event of that name."""
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
