"""The Asterisk driver: calls arrive by ``AGI(agi:async,twiml-pbx-adapter,<To>)`` in the
dialplan (`dialplan/asterisk/extensions_twiml.conf`) and are controlled with AsyncAGI commands
over the adapter's AMI connection. The command text for each operation lives in `mapping.py`.

After the AMI connection comes back: panoramisk logs in again by itself when the connection
drops, but the events Asterisk sent meanwhile are lost, so a caller who hung up during the outage
would leave a session waiting forever for the reply to its AGI command (RECORD FILE, WAIT...).
Asterisk greets every login with a ``FullyBooted`` event; on each one after the first, every call
the driver holds is checked (AMI ``Getvar`` on its channel: `ChannelGone` means it is gone) and a
gone call is marked hung up, which fails its pending AGI command with `CallGone` and ends its
session; then the `on_reconnected` handlers run (e.g. a recovery sweep for the recordings such a
session could not finish).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any
from urllib.parse import unquote

from adapter.pbx import base
from adapter.pbx.asterisk import mapping
from adapter.pbx.asterisk.ami import AmiClient, AmiMessage
from adapter.pbx.asterisk.call import AsteriskCall
from adapter.pbx.asterisk.escape import ami_channel
from adapter.pbx.asterisk.settings import AsteriskSettings
from adapter.pbx.base import ChannelGone, PbxError
from adapter.tasks import TaskSet

__all__ = ["AsteriskDriver", "parse_agi_env"]

log = logging.getLogger(__name__)

AGI_MARKER = "twiml-pbx-adapter"
# Newstate ChannelState of an originated channel whose callee rings (AST_STATE_RINGING).
_STATE_RINGING = "5"
RESUME_MARKER = "twiml-pbx-adapter-resume"
OUTBOUND_MARKER = "twiml-pbx-adapter-outbound"


def parse_agi_env(encoded: str) -> dict[str, str]:
    """The ``Env`` header of ``AsyncAGIStart``: URL-encoded ``key: value`` lines.

    Split into lines first, then decode each value. A caller ID holding an encoded newline could
    still forge a ``key: value`` line; the adapter therefore reads caller ID from the event's own
    headers and only the ``agi_arg_*`` keys from here, which Asterisk writes last, so the real
    values always win (last occurrence wins).
    """
    env: dict[str, str] = {}
    for raw_line in encoded.split("%0A"):
        key, sep, value = raw_line.partition("%3A%20")
        if not sep:
            continue
        env[unquote(key)] = unquote(value)
    return env


class AsteriskDriver:
    """Connects to AMI and adopts every channel that enters AsyncAGI with our marker."""

    name = "asterisk"

    def __init__(self, settings: AsteriskSettings) -> None:
        self.settings = settings
        self.ami = AmiClient(
            host=settings.host,
            port=settings.port,
            username=settings.username,
            secret=settings.secret,
            connect_timeout=settings.connect_timeout,
        )
        self._calls: dict[str, AsteriskCall] = {}
        # Originate ActionID -> (CallSid, what to do if it is never answered).
        self._originating: dict[str, tuple[str, base.OnOriginateFailed]] = {}
        # CallSid (= the originated channel's Uniqueid) -> what to do when it starts ringing.
        self._ringing: dict[str, base.OnOriginateRinging] = {}
        self._tasks = TaskSet("asterisk")
        self._on_call: base.CallHandler | None = None
        self._on_reconnected: list[base.OnReconnected] = []

    async def start(self, on_call: base.CallHandler) -> None:
        self._on_call = on_call
        self.ami.on("AsyncAGIStart", self._on_agi_start)
        self.ami.on("AsyncAGIEnd", self._on_channel_gone)
        self.ami.on("Hangup", self._on_channel_gone)
        self.ami.on("DialEnd", self._on_dial_end)
        self.ami.on("DTMFEnd", self._on_dtmf_end)
        self.ami.on("OriginateResponse", self._on_originate_response)
        self.ami.on("Newstate", self._on_newstate)
        self.ami.on("AGIExecStart", self._on_agi_exec_start)
        await self.ami.connect()
        # Registered once logged in: the first login's FullyBooted has gone by then, so every
        # one from now on is a re-login.
        self.ami.on("FullyBooted", self._on_fully_booted)
        log.info("connected to Asterisk AMI at %s", self.ami.address)

    async def stop(self) -> None:
        await self._tasks.cancel_all()
        await self.ami.close()

    @property
    def connected(self) -> bool:
        return self.ami.connected

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    async def originate(self, request: base.OriginateRequest, on_failed: base.OnOriginateFailed, *,
                        on_ringing: base.OnOriginateRinging | None = None) -> str:
        """Returns the Uniqueid the channel will have (`mapping.originate`: the CallSid).
        Ringing: the channel's ``Newstate`` to ``5`` (Ringing)."""
        kind, address = request.target
        target = mapping.dial_target(kind, address, number_template=self.settings.dial_number,
                                     sip_template=self.settings.dial_sip)
        action_id = f"twiml-originate-{request.call_sid}"
        action = mapping.originate(request.call_sid, target, caller_id=request.caller_id,
                                   timeout=request.timeout, action_id=action_id)
        self._originating[action_id] = (request.call_sid, on_failed)
        if on_ringing is not None:
            self._ringing[request.call_sid] = on_ringing
        try:
            await self.ami.action(action)
        except PbxError:
            self._originating.pop(action_id, None)
            self._ringing.pop(request.call_sid, None)
            raise
        return action["ChannelId"]

    async def cancel_originate(self, call_sid: str) -> bool:
        """AMI ``Hangup`` of the ringing channel by its Uniqueid (the CallSid; measured on
        Asterisk 22: ends a ringing Originate at once, its OriginateResponse then fails)."""
        action_id = f"twiml-originate-{call_sid}"
        if action_id not in self._originating:
            return False
        try:
            await self.ami.action(mapping.hangup_channel(call_sid))
        except ChannelGone:
            return False
        return True

    async def hang_up_channel(self, channel: str) -> bool:
        """AMI ``Hangup`` (cause 16, normal clearing) of the channel with that Uniqueid."""
        try:
            await self.ami.action(mapping.hangup_channel(channel))
        except ChannelGone:
            return False
        return True

    def on_reconnected(self, handler: base.OnReconnected) -> None:
        self._on_reconnected.append(handler)

    def _on_fully_booted(self, _event: AmiMessage) -> None:
        log.info("AMI: logged in again; checking %d call(s)", self.active_calls)
        self._spawn(self._check_calls(), "check calls after a re-login")

    async def _check_calls(self) -> int:
        """Mark hung up every call whose channel went while the connection was down (see the
        module docstring); how many did."""
        calls = [c for c in list(self._calls.values()) if not c.hung_up.is_set()]
        gone = [c for c, dead in zip(calls, await asyncio.gather(
            *(self._channel_gone(c) for c in calls)), strict=True) if dead]
        for call in gone:
            log.warning("AMI reconnected: channel %s hung up while the connection was down",
                        call.channel)
            call.mark_gone()
        for handler in self._on_reconnected:
            await handler()
        return len(gone)

    async def _channel_gone(self, call: AsteriskCall) -> bool:
        try:
            await self.ami.action(mapping.getvar(call.channel, "UNIQUEID"))
        except ChannelGone:
            return True
        except PbxError:
            return False
        return False

    def _on_originate_response(self, event: AmiMessage) -> None:
        entry = self._originating.pop(event.get("ActionID") or "", None)
        if entry is None:
            return
        call_sid, on_failed = entry
        self._ringing.pop(call_sid, None)
        if event.get("Response") == "Success":
            return
        status = mapping.ORIGINATE_FAILURE.get(event.get("Reason") or "", "failed")
        self._spawn(on_failed(call_sid, status), f"originate {call_sid} failed")

    def _on_newstate(self, event: AmiMessage) -> None:
        if event.get("ChannelState") != _STATE_RINGING:
            return
        on_ringing = self._ringing.pop(event.get("Uniqueid") or "", None)
        if on_ringing is not None:
            call_sid = event.get("Uniqueid") or ""
            self._spawn(on_ringing(call_sid), f"originate {call_sid} ringing")

    def _spawn(self, work: Coroutine[Any, Any, object], name: str) -> None:
        self._tasks.spawn(work, name)

    def _on_agi_start(self, event: AmiMessage) -> None:
        env = parse_agi_env(event.get("Env") or "")
        if env.get("agi_arg_1") == RESUME_MARKER:
            resumed = self._calls.get(event.get("Channel") or "")
            if resumed is not None:
                resumed.resumed()
            return
        outbound_sid = None
        if env.get("agi_arg_1") == OUTBOUND_MARKER:
            outbound_sid = env.get("agi_arg_2") or ""
        elif env.get("agi_arg_1") != AGI_MARKER:
            return  # another application's AsyncAGI channel
        channel = event.get("Channel") or ""
        try:
            ami_channel(channel)
        except PbxError:
            log.error("refusing AsyncAGI channel with an unexpected name: %r", channel)
            return
        call = AsteriskCall(self.ami, channel, self.settings)
        self._calls[channel] = call
        incoming = base.IncomingCall(
            to=env.get("agi_arg_2") or event.get("Exten") or "",
            from_=_caller_id(event.get("CallerIDNum") or ""),
            caller_name=_caller_id(event.get("CallerIDName") or ""),
            pbx_call_id=event.get("Uniqueid") or env.get("agi_uniqueid", ""),
            control=call,
            outbound_call_sid=outbound_sid,
        )
        self._spawn(self._run_call(incoming, call), f"call {channel}")

    async def _run_call(self, incoming: base.IncomingCall, call: AsteriskCall) -> None:
        assert self._on_call is not None
        try:
            await self._on_call(incoming)
        except Exception:
            log.exception("call %s: handler failed", call.channel)
        finally:
            self._calls.pop(call.channel, None)

    def _on_agi_exec_start(self, event: AmiMessage) -> None:
        call = self._calls.get(event.get("Channel") or "")
        if call is not None:
            call.agi_started()

    def _on_dial_end(self, event: AmiMessage) -> None:
        call = self._calls.get(event.get("Channel") or "")
        if call is not None:
            call.on_dial_end(event)

    def _on_dtmf_end(self, event: AmiMessage) -> None:
        call = self._calls.get(event.get("Channel") or "")
        if call is not None:
            call.on_key(event)

    def _on_channel_gone(self, event: AmiMessage) -> None:
        call = self._calls.get(event.get("Channel") or "")
        if call is None:
            return
        if call.redirecting and (event.get("Event") or "").lower() == "asyncagiend":
            self.ami.channel_gone(call.channel)  # release its AGI waiters; the call goes on
            return
        call.mark_gone()


def _caller_id(value: str) -> str:
    """Asterisk reports a missing caller ID as ``<unknown>`` (AMI) or ``unknown`` (AGI)."""
    return "" if value in ("unknown", "<unknown>", "") else value
