"""Outbound REST calls on FreeSWITCH, from their ``bgapi originate`` until their channel
reaches the outbound socket (or the attempt ends without it).

The driver hands over four things: `Originations.originate` and `cancel` (the REST calls), the
inbound connection's events (`on_event`), and, for each channel that connects to the outbound
socket, `outbound_call_sid` then `adopt`. The command text lives in `mapping`.

While an attempt waits for its result the inbound connection receives exactly its events: the
``filter``s ``Job-UUID <its job>`` and ``Unique-ID <its channel>``, and the subscription to
BACKGROUND_JOB, CHANNEL_PROGRESS and CHANNEL_PROGRESS_MEDIA while any attempt waits
(`inbound.Watch`; why: docs/freeswitch.md, "Outbound calls"). So the connection never
receives another channel's progress or another client's job results on a busy PBX, and when
no attempt waits it receives nothing at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid as uuid_module
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from adapter.pbx.base import (
    ChannelGone,
    OnOriginateFailed,
    OnOriginateRinging,
    OriginateRequest,
    PbxError,
)
from adapter.pbx.freeswitch import mapping, replies
from adapter.pbx.freeswitch.inbound import NOTHING, InboundApi, Watch
from adapter.pbx.freeswitch.protocol import EslEvent

__all__ = ["Originations"]

log = logging.getLogger(__name__)

# `TaskSet.spawn` of the driver: runs a coroutine in a named task cancelled at stop.
Spawn = Callable[[Coroutine[Any, Any, None], str], object]


@dataclass(slots=True)
class _Attempt:
    """An outbound REST call between its ``bgapi originate`` and either its channel reaching
    the outbound socket or the job's failure."""

    call_sid: str
    channel: str  # the origination_uuid we chose: the channel's Unique-ID
    job: str  # the bgapi Job-UUID (ours)
    on_failed: OnOriginateFailed
    on_ringing: OnOriginateRinging | None
    adopted: asyncio.Event = field(default_factory=asyncio.Event)
    answered: bool = False  # its BACKGROUND_JOB said +OK: waiting for the socket
    rang: bool = False  # on_ringing has run
    canceled: bool = False  # cancel() had FreeSWITCH kill its channel

    @property
    def filters(self) -> tuple[tuple[str, str], ...]:
        return (("Job-UUID", self.job), ("Unique-ID", self.channel))


class Originations:
    """The outbound calls waiting for their answer, by the channel UUID the adapter chose."""

    def __init__(
        self,
        inbound: InboundApi,
        *,
        dial_number: str,
        dial_sip: str,
        connect_timeout: float,
        spawn: Spawn,
    ) -> None:
        """`connect_timeout`: how long an answered channel may take to reach the outbound
        socket; `spawn(coroutine, name)` runs work in a task the driver cancels when it stops."""
        self._inbound = inbound
        self._dial_number = dial_number
        self._dial_sip = dial_sip
        self._connect_timeout = connect_timeout
        self._spawn = spawn
        self._pending: dict[str, _Attempt] = {}

    async def _api(self, command: str) -> str:
        return await self._inbound.api(command)

    # --- what the inbound connection receives ------------------------------------------------

    def _wanted(self) -> Watch:
        """The filters of every attempt still waiting for its result, and the events while
        there is one."""
        waiting = [a for a in self._pending.values() if not a.answered]
        if not waiting:
            return NOTHING
        filters = tuple(item for attempt in waiting for item in attempt.filters)
        return Watch(filters, mapping.ORIGINATE_EVENTS)

    async def _rewatch(self) -> None:
        """After an attempt stopped waiting: take its filters away (and the events, if it was
        the last). Never waits for a lost connection (a new one is set up without them)."""
        try:
            await self._inbound.watch(self._wanted(), wait=False)
        except PbxError as exc:
            log.warning("outbound calls: updating the inbound connection's event filters: %s",
                        exc)

    def _forget(self, attempt: _Attempt) -> None:
        if self._pending.get(attempt.channel) is attempt:
            del self._pending[attempt.channel]
        self._spawn(self._rewatch(), "update the inbound events")

    # --- the REST calls ------------------------------------------------------------------------

    async def originate(self, request: OriginateRequest, on_failed: OnOriginateFailed, *,
                        on_ringing: OnOriginateRinging | None = None) -> str:
        """``bgapi originate`` into the dialplan's ``twiml-outbound`` context (`mapping`);
        returns the channel's Unique-ID (ours: ``origination_uuid``) once FreeSWITCH accepted
        the job. Ringing (180 or 183), `on_ringing(call_sid)` runs once. Answered, the channel
        reaches the outbound socket and the driver hands it over (`adopt`); otherwise the
        job's BACKGROUND_JOB says why and `on_failed(call_sid, status)` runs (busy, no-answer,
        failed)."""
        kind, address = request.target
        endpoint = mapping.dial_target(kind, address, number_template=self._dial_number,
                                       sip_template=self._dial_sip)
        channel = str(uuid_module.uuid4())
        command = mapping.originate(request.call_sid, endpoint, channel_uuid=channel,
                                    caller_id=request.caller_id, timeout=request.timeout)
        attempt = _Attempt(request.call_sid, channel, str(uuid_module.uuid4()), on_failed,
                           on_ringing)
        self._pending[channel] = attempt  # before anything is sent: events may come first
        try:
            await self._inbound.watch(self._wanted())  # before the job starts
            reply = await self._inbound.bgapi(command, job_uuid=attempt.job)
        except PbxError:
            self._forget(attempt)
            raise
        job = replies.bgapi_job(reply)
        if job is None:
            self._forget(attempt)
            raise PbxError(f"FreeSWITCH refused the originate of {request.call_sid}: "
                           f"{reply.strip()[:200]}")
        if job != attempt.job:  # FreeSWITCH 1.10.12 uses ours (mod_event_socket.c)
            log.warning("outbound call %s: FreeSWITCH chose Job-UUID %s; its result is only "
                        "seen if it comes after the filter for it", request.call_sid, job)
            attempt.job = job
            self._spawn(self._rewatch(), "update the inbound events")
        log.info("outbound call %s: originate to %s, channel %s, job %s", request.call_sid,
                 endpoint, channel, job)
        return channel

    async def cancel(self, call_sid: str) -> bool:
        """REST ``Status=canceled``: ``uuid_kill <channel> ORIGINATOR_CANCEL`` of an attempt
        still ringing; its job then ends with ``-ERR ORIGINATOR_CANCEL`` and `on_failed` runs.
        False when there is nothing to cancel: no such attempt, or it was answered already
        (the call goes on), or FreeSWITCH no longer knows its channel (its result is on its
        way)."""
        attempt = next((a for a in self._pending.values() if a.call_sid == call_sid), None)
        if attempt is None or attempt.answered or attempt.adopted.is_set():
            return False
        if attempt.canceled:
            return True  # a second cancel while the first one's result is on its way
        attempt.canceled = True  # before sending: the result may come before the reply
        try:
            reply = await self._api(mapping.cancel_originate(attempt.channel))
        except ChannelGone:
            attempt.canceled = False
            return False
        except PbxError:
            attempt.canceled = False
            raise
        if not reply.startswith("+OK"):
            attempt.canceled = False
            raise PbxError(f"FreeSWITCH refused to cancel outbound call {call_sid}: "
                           f"{reply.strip()[:200]}")
        if attempt.adopted.is_set():
            # Answered and on the outbound socket while the kill was on its way: the call is
            # running (and the kill ends it as a hang-up); it is no longer pending.
            return False
        log.info("outbound call %s: cancelled (uuid_kill %s ORIGINATOR_CANCEL)", call_sid,
                 attempt.channel)
        return True

    # --- the inbound connection's events ------------------------------------------------------

    def on_event(self, event: EslEvent) -> None:
        if event.name == mapping.BACKGROUND_JOB:
            self._on_job(event)
        elif event.name in mapping.PROGRESS_EVENTS:
            self._on_progress(event)

    def _on_progress(self, event: EslEvent) -> None:
        attempt = self._pending.get(event.unique_id)
        if (attempt is None or attempt.on_ringing is None or attempt.rang
                or attempt.answered or attempt.canceled):
            return
        attempt.rang = True
        log.info("outbound call %s: ringing (%s)", attempt.call_sid, event.name)
        self._spawn(self._report_ringing(attempt), f"originate {attempt.call_sid} ringing")

    def _on_job(self, event: EslEvent) -> None:
        job = event.get("Job-UUID")
        attempt = next((a for a in self._pending.values() if a.job == job), None)
        if attempt is None:
            return  # a call already on the outbound socket, or given up
        status = replies.originate_result(event.body)
        if status is None and not attempt.canceled:
            attempt.answered = True  # its socket connects now, if it has not already
            self._spawn(self._rewatch(), "update the inbound events")
            self._spawn(self._expect_socket(attempt), f"originate {attempt.call_sid} answered")
            return
        if status is None:  # answered while our kill was on its way: the kill ends it
            status = "failed"
        self._forget(attempt)
        log.info("outbound call %s: %s -> %s", attempt.call_sid, event.body.strip()[:200],
                 status)
        self._spawn(self._report_failed(attempt, status),
                    f"originate {attempt.call_sid} failed")

    async def _expect_socket(self, attempt: _Attempt) -> None:
        """An answered originate whose channel does not reach the outbound socket (the
        ``twiml-outbound`` context is missing, or points elsewhere) is ended and failed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(attempt.adopted.wait(), self._connect_timeout)
        if self._pending.get(attempt.channel) is not attempt:
            return
        self._forget(attempt)
        log.error("outbound call %s: FreeSWITCH answered channel %s but it did not reach the "
                  "adapter's outbound socket within %.0f s (is the %r context of "
                  "dialplan/freeswitch/twiml.xml installed?); hanging it up", attempt.call_sid,
                  attempt.channel, self._connect_timeout, mapping.OUTBOUND_CONTEXT)
        with contextlib.suppress(PbxError):
            await self._api(mapping.uuid_kill(attempt.channel))
        await self._report_failed(attempt, "failed")

    async def _report_ringing(self, attempt: _Attempt) -> None:
        assert attempt.on_ringing is not None
        try:
            await attempt.on_ringing(attempt.call_sid)
        except Exception:
            log.exception("outbound call %s: reporting ringing failed", attempt.call_sid)

    async def _report_failed(self, attempt: _Attempt, status: str) -> None:
        try:
            await attempt.on_failed(attempt.call_sid, status)
        except Exception:
            log.exception("outbound call %s: reporting %s failed", attempt.call_sid, status)

    # --- after a reconnect --------------------------------------------------------------------

    async def check_after_reconnect(self) -> None:
        """A BACKGROUND_JOB fired while the inbound connection was down is lost, so a channel
        that no longer exists (and never reached the outbound socket) failed meanwhile; its
        cause is unknown, it is reported ``failed``. (The new connection already has the
        filters and events of the attempts still waiting: `InboundApi` sets them up first.)"""
        for attempt in list(self._pending.values()):
            if attempt.answered:
                continue  # waiting for its socket: `_expect_socket` watches it
            reply = await self._api(mapping.uuid_exists(attempt.channel))
            if reply.strip() == "false" and self._pending.get(attempt.channel) is attempt:
                self._forget(attempt)
                log.warning("outbound call %s: its channel %s ended while the inbound "
                            "connection was down (result lost); reporting it failed",
                            attempt.call_sid, attempt.channel)
                self._spawn(self._report_failed(attempt, "failed"),
                            f"originate {attempt.call_sid} failed")

    # --- channels on the outbound socket ------------------------------------------------------

    def outbound_call_sid(self, uuid: str, data: EslEvent) -> str | None:
        """None for an ordinary (inbound) call. For a channel in the ``twiml-outbound`` context:
        the CallSid of the REST call whose originate made it, or ``""`` when the adapter did
        not originate it (the adapter then hangs it up: no outbound call has that SID).

        Only the context decides which kind a channel is, and only our own originate makes an
        outbound call: its Unique-ID must be the ``origination_uuid`` we chose and its
        ``twiml_call_sid`` variable that call's SID. A trunk call carrying such a variable is
        still an inbound call."""
        context = data.get("Caller-Context") or data.get("Channel-Context")
        marker = data.variable(mapping.CALL_SID_VARIABLE)
        if context != mapping.OUTBOUND_CONTEXT:
            if marker is not None:
                log.warning("call %s from context %r carries %s=%r: ignored, it is an "
                            "inbound call", uuid, context, mapping.CALL_SID_VARIABLE, marker)
            return None
        attempt = self._pending.get(uuid)
        if attempt is None or marker != attempt.call_sid:
            log.error("call %s in context %r (%s=%r) was not originated by this adapter (or "
                      "no longer waits); hanging it up", uuid, context,
                      mapping.CALL_SID_VARIABLE, marker)
            return ""
        return attempt.call_sid

    def adopt(self, uuid: str, call_sid: str) -> str:
        """The outbound call's channel is ready: it is no longer waiting for its originate.
        ``""`` (hang up) if it stopped waiting meanwhile (`_expect_socket` gave up on it, or
        it was cancelled: the kill ends it anyway)."""
        attempt = self._pending.get(uuid)
        if attempt is None or attempt.call_sid != call_sid or attempt.canceled:
            return ""
        self._forget(attempt)
        attempt.adopted.set()
        return call_sid
