"""The FreeSWITCH driver: calls arrive on the outbound event socket (the dialplan's
``socket HOST:PORT async full``, `dialplan/freeswitch/twiml.xml`) and are controlled with
``sendmsg`` on that socket; an inbound event socket connection carries ``api`` commands, and
``bgapi originate`` for outbound REST calls (`originate.py`: from the originate until the
channel reaches the outbound socket).

greenswitch does the socket work in one gevent thread (`bridge.GeventBridge`); everything here
runs in the asyncio loop. Each call is a `call.FreeSwitchCall`; the command text for each
operation lives in `mapping.py`, how replies and events map back to results in `replies.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from pathlib import Path

from adapter.pbx import base
from adapter.pbx.base import ChannelGone, PbxError
from adapter.pbx.freeswitch import mapping
from adapter.pbx.freeswitch.beep import write_beep
from adapter.pbx.freeswitch.bridge import GeventBridge
from adapter.pbx.freeswitch.call import FreeSwitchCall
from adapter.pbx.freeswitch.escape import UnsafeValue
from adapter.pbx.freeswitch.esl import FramedInboundESL
from adapter.pbx.freeswitch.inbound import InboundApi, connect_inbound
from adapter.pbx.freeswitch.listener import CallLink, OutboundListener
from adapter.pbx.freeswitch.originate import Originations
from adapter.pbx.freeswitch.protocol import EslEvent
from adapter.pbx.freeswitch.settings import FreeSwitchSettings
from adapter.tasks import TaskSet

__all__ = ["FreeSwitchDriver", "incoming_from"]

log = logging.getLogger(__name__)

def incoming_from(channel_data: EslEvent) -> tuple[str, str, str]:
    """(To, From, CallerName) from the ``connect`` reply's caller profile."""
    to = channel_data.get("Caller-Destination-Number") or channel_data.get(
        "Channel-Destination-Number")
    from_ = channel_data.get("Caller-Caller-ID-Number") or channel_data.get(
        "Channel-Caller-ID-Number")
    name = channel_data.get("Caller-Caller-ID-Name") or channel_data.get(
        "Channel-Caller-ID-Name")
    return to, from_, name


class FreeSwitchDriver:
    """Listens for FreeSWITCH's outbound sockets and keeps an inbound event socket for ``api``."""

    name = "freeswitch"

    def __init__(self, settings: FreeSwitchSettings) -> None:
        self.settings = settings
        self._bridge = GeventBridge()
        self._inbound = InboundApi(self._bridge, settings, on_reconnected=self._check_calls,
                                   on_event=self._on_inbound_event)
        self._tasks = TaskSet("freeswitch")
        self._calls: dict[int, FreeSwitchCall] = {}
        # Channel data, and the CallSid if it is an outbound REST call, until the call is ready.
        self._opening: dict[int, tuple[EslEvent, str | None]] = {}
        self._outbound = Originations(
            self._inbound, dial_number=settings.dial_number, dial_sip=settings.dial_sip,
            connect_timeout=settings.connect_timeout, spawn=self._tasks.spawn,
        )
        self._running: set[int] = set()  # calls whose handler runs
        self._on_call: base.CallHandler | None = None
        self._on_reconnected: list[base.OnReconnected] = []
        self._listener: OutboundListener | None = None  # gevent thread only
        self.outbound_address: tuple[str, int] | None = None
        self.version = ""

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    @property
    def connected(self) -> bool:
        return self._inbound.up

    @property
    def inbound_up(self) -> bool:
        """Whether the inbound (api) connection is up right now."""
        return self._inbound.up

    @property
    def inbound(self) -> InboundApi:
        return self._inbound

    @property
    def beep_path(self) -> Path:
        return self.settings.spool.local / mapping.BEEP_FILE

    async def start(self, on_call: base.CallHandler) -> None:
        self._on_call = on_call
        await asyncio.to_thread(write_beep, self.beep_path)
        s = self.settings
        # The inbound connection bounds its own set-up by connect_timeout (and says why).
        address, esl, status = await self._bridge.start(self._open,
                                                        within=s.connect_timeout + 5.0)
        self._inbound.attach(esl)
        self.outbound_address = address
        self.version = next((line for line in status.splitlines() if "Version" in line), "")
        log.info("FreeSWITCH event socket at %s:%d (%s); outbound socket on %s:%d",
                 s.esl_host, s.esl_port, self.version or "version unknown", *address)

    async def stop(self) -> None:
        await self._tasks.cancel_all()
        esl = await self._inbound.detach()
        await self._bridge.stop(lambda: self._close(esl), within=5.0)
        for call in list(self._calls.values()):
            call.on_closed()
        self._calls.clear()

    async def api(self, command: str) -> str:
        """One ``api`` command on the inbound connection; returns FreeSWITCH's text.

        `command` must be built from `escape`d values (mapping); a line break is refused here.
        While the connection is being re-established it waits up to `api_wait` seconds.
        """
        return await self._inbound.api(command)

    # --- gevent thread --------------------------------------------------------------------------

    def _open(self) -> tuple[tuple[str, int], FramedInboundESL, str]:
        s = self.settings
        # Nothing is watched before the driver has started (no outbound call yet).
        esl, status = connect_inbound(s, self._inbound.on_closed_handler)
        try:
            listener = OutboundListener(
                s.listen_host, s.listen_port, sink=self, bridge=self._bridge,
                setup_timeout=s.connect_timeout, command_timeout=s.command_timeout,
            )
            address = listener.start()
        except BaseException:
            esl.on_closed = None
            esl.stop()
            raise
        self._listener = listener
        return address, esl, status

    def _close(self, esl: FramedInboundESL | None) -> None:
        if self._listener is not None:
            self._listener.stop()
        if esl is not None:
            esl.on_closed = None
            esl.stop()

    # --- a previous run's channels, and after a reconnect -----------------------------------------

    async def hang_up_channel(self, channel: str) -> bool:
        """``uuid_exists``, then ``uuid_kill … NORMAL_CLEARING`` on the inbound connection.

        When the adapter dies, FreeSWITCH does not end its calls at once: the application
        running on the channel runs to its own end (a ``sleep``, a ``record`` up to its limit, a
        ``bridge`` until a party hangs up), then ``socket`` returns and the dialplan hangs up
        (docs/freeswitch.md, "When the adapter dies"); a channel still up when the adapter is
        back is ended here. False, without ``uuid_kill``, for a channel FreeSWITCH does not know
        or a value that is no FreeSWITCH UUID (a row of another PBX); other replies raise
        `PbxError`."""
        try:
            exists = mapping.uuid_exists(channel)
            kill = mapping.uuid_kill(channel, "NORMAL_CLEARING")
        except UnsafeValue:
            log.warning("recovery: %r is not a FreeSWITCH channel UUID; not hung up", channel)
            return False
        if (await self.api(exists)).strip() != "true":
            return False
        try:
            reply = (await self.api(kill)).strip()
        except ChannelGone:
            return False  # it hung up between uuid_exists and uuid_kill
        if reply.startswith("+OK"):
            return True
        raise PbxError(f"uuid_kill {channel}: {reply}")

    def on_reconnected(self, handler: base.OnReconnected) -> None:
        self._on_reconnected.append(handler)

    async def _check_calls(self) -> None:
        """The inbound connection is back: check each call's channel still exists (calls live
        on their own sockets, so normally they all do; a channel FreeSWITCH no longer knows
        is treated as gone, which also ends its recordings). Then the outbound calls still
        waiting for their originate's result (`Originations.check_after_reconnect`)."""
        for call in list(self._calls.values()):
            if call.hung_up.is_set():
                continue
            reply = await self.api(mapping.uuid_exists(call.uuid))
            if reply.strip() == "false":
                log.warning("call %s: FreeSWITCH no longer knows the channel after the "
                            "reconnect; treating it as ended", call.uuid)
                call.on_closed()
        await self._outbound.check_after_reconnect()
        for handler in self._on_reconnected:
            await handler()

    # --- outbound REST calls (originate.py) -------------------------------------------------------

    async def originate(self, request: base.OriginateRequest, on_failed: base.OnOriginateFailed, *,
                        on_ringing: base.OnOriginateRinging | None = None) -> str:
        """``bgapi originate``; returns the channel's Unique-ID (chosen by the adapter).
        Ringing, `on_ringing(call_sid)` runs once. Answered, the channel reaches the outbound
        socket and `call_ready` hands it over with `IncomingCall.outbound_call_sid`;
        otherwise `on_failed(call_sid, status)` runs."""
        return await self._outbound.originate(request, on_failed, on_ringing=on_ringing)

    async def cancel_originate(self, call_sid: str) -> bool:
        """``uuid_kill <channel> ORIGINATOR_CANCEL`` of a call still ringing (True; its
        `on_failed` follows); False if it is not waiting for an answer (any more)."""
        return await self._outbound.cancel(call_sid)

    def _on_inbound_event(self, event: EslEvent) -> None:
        self._outbound.on_event(event)

    # --- CallSink: posted from the gevent thread ------------------------------------------------

    def call_opened(self, link: CallLink, channel_data: EslEvent) -> None:
        self._calls[link.id] = FreeSwitchCall(
            uuid=link.uuid, link=link, bridge=self._bridge, settings=self.settings,
            api=functools.partial(self._inbound.api, wait=False),
        )
        self._opening[link.id] = (channel_data,
                                  self._outbound.outbound_call_sid(link.uuid, channel_data))

    def call_ready(self, link_id: int) -> None:
        call = self._calls.get(link_id)
        opening = self._opening.pop(link_id, None)
        if call is None or opening is None or self._on_call is None:
            return
        data, outbound_call_sid = opening
        if outbound_call_sid:
            outbound_call_sid = self._outbound.adopt(call.uuid, outbound_call_sid)
        to, from_, name = incoming_from(data)
        if outbound_call_sid:
            # After the originate's transfer the caller profile names the callee's side; the
            # call's From is the caller ID the adapter originated it with.
            from_ = data.variable("origination_caller_id_number") or from_
        incoming = base.IncomingCall(to=to, from_=from_, caller_name=name, pbx_call_id=call.uuid,
                                control=call, outbound_call_sid=outbound_call_sid)
        self._running.add(link_id)
        self._tasks.spawn(self._run_call(link_id, incoming, call), f"call {call.uuid}")

    def call_closed(self, link_id: int) -> None:
        self._opening.pop(link_id, None)
        call = self._calls.get(link_id)
        if call is not None:
            call.on_closed()
            if link_id not in self._running:
                del self._calls[link_id]

    async def _run_call(self, link_id: int, incoming: base.IncomingCall,
                        call: FreeSwitchCall) -> None:
        assert self._on_call is not None
        try:
            await self._on_call(incoming)
        except Exception:
            log.exception("call %s: handler failed", call.uuid)
        finally:
            await call.hangup()
            self._running.discard(link_id)
            self._calls.pop(link_id, None)
            with contextlib.suppress(PbxError):
                await self._bridge.call(call.link.release, self.settings.linger_grace)

