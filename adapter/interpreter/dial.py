"""`<Dial>`'s bookkeeping around the PBX's bridge: the child call's row (its own ``CA`` SID,
``Direction=outbound-dial``, ``ParentCallSid``), its recording (`<Dial record>`), what is not
supported yet, and the action request's parameters (DialCallStatus, DialCallSid,
DialCallDuration, DialBridged; RecordingUrl, RecordingSid, RecordingDuration when recorded)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from adapter.db.store import CallRow
from adapter.interpreter.call_recording import CallRecorder
from adapter.interpreter.context import SessionContext
from adapter.interpreter.params import CallInfo
from adapter.pbx.base import DialRequest, DialResult, PbxError
from adapter.recordings.status_callback import DIAL_VERB
from adapter.sids import CALL, new_sid
from adapter.twiml import Dial

__all__ = ["DialRecording", "action_params", "add_child_call", "dial_request", "end_child_call",
           "marking_answered", "recording_dial"]

log = logging.getLogger(__name__)


def dial_request(verb: Dial, call_sid: str) -> DialRequest:
    """What the PBX is asked to do; logs the attributes not supported yet (ignored)."""
    if verb.hangup_on_star:
        log.warning("call %s: <Dial hangupOnStar=true> is not supported yet; ignored", call_sid)
    if any(target.send_digits for target in verb.targets):
        log.warning("call %s: <Number sendDigits> is not supported yet; ignored", call_sid)
    return DialRequest(targets=tuple((t.kind, t.address) for t in verb.targets),
                       timeout=verb.timeout, time_limit=verb.time_limit,
                       caller_id=verb.caller_id)


async def add_child_call(ctx: SessionContext, info: CallInfo, verb: Dial) -> str:
    """The child call's row, ringing; returns its SID."""
    child_sid = new_sid(CALL)
    now = datetime.now(UTC)
    await ctx.store.add_call(CallRow(
        sid=child_sid, account_sid=info.account_sid, from_=verb.caller_id or info.from_,
        to=verb.targets[0].address, direction="outbound-dial", status="ringing",
        caller_name=None, pbx=ctx.config.pbx, pbx_channel="", date_created=now,
        date_updated=now, start_time=now, parent_call_sid=info.call_sid,
    ))
    log.info("call %s: <Dial> %s as %s", info.call_sid,
             " & ".join(t.address for t in verb.targets), child_sid)
    return child_sid


@contextlib.asynccontextmanager
async def marking_answered(ctx: SessionContext, child_sid: str,
                           answered: asyncio.Event) -> AsyncIterator[None]:
    """While the `<Dial>` runs: once the callee answers (`answered`), the child call is in
    progress (its row says so at once, so a crash during the bridge leaves it `completed`, not
    `canceled`, for recovery).

    On the way out the marking has always ended: cancelled if the callee never answered,
    awaited if it did (so its update lands before the row's final status); a failed update is
    logged."""
    marking = asyncio.get_running_loop().create_task(
        _mark_answered(ctx, child_sid, answered), name=f"dial {child_sid}: mark answered")
    try:
        yield
    finally:
        if not answered.is_set():
            marking.cancel()
        (outcome,) = await asyncio.gather(marking, return_exceptions=True)
        if isinstance(outcome, Exception):
            log.error("<Dial> %s: marking the answered child call failed", child_sid,
                      exc_info=outcome)


async def _mark_answered(ctx: SessionContext, child_sid: str, answered: asyncio.Event) -> None:
    """Once the callee answers: the child call's row says in progress."""
    await answered.wait()
    await ctx.store.update_call(child_sid, status="in-progress", date_updated=datetime.now(UTC))


async def end_child_call(ctx: SessionContext, info: CallInfo, child_sid: str,
                         result: DialResult) -> None:
    await ctx.store.update_call(
        child_sid, status=result.status, duration=result.duration,
        end_time=datetime.now(UTC), pbx_channel=result.child_channel or "",
    )
    log.info("call %s: <Dial> ended: %s, %d s", info.call_sid, result.status, result.duration)


class DialRecording:
    """`<Dial record>`: a background recording of the parent call (RecordingSource
    ``DialVerb``) from the start of the ringing or from the callee's answer, to the end of the
    `<Dial>`. Mono mixes both parties; dual puts the caller on channel 1 and the dialed party
    (what the caller hears) on channel 2: the PBX records the caller's channel, whose read side
    is the caller and write side the bridged callee."""

    def __init__(self, recorder: CallRecorder, verb: Dial, document_url: str) -> None:
        self.recorder = recorder
        self.verb = verb
        self.document_url = document_url
        self.sid: str | None = None
        self.duration: int | None = None  # RecordingDuration once completed

    async def start(self) -> None:
        """Start recording now; a PBX failure is logged and the `<Dial>` goes on unrecorded."""
        assert self.verb.recording is not None
        try:
            self.sid = await self.recorder.start(self.verb.recording, self.document_url,
                                                 source=DIAL_VERB)
        except PbxError as exc:
            log.error("call %s: <Dial record=%s>: the recording did not start: %s",
                      self.recorder.info.call_sid, self.verb.record, exc)

    async def start_on_answer(self, answered: asyncio.Event) -> None:
        await answered.wait()
        await self.start()

    def action_params(self, recording_url: str) -> list[tuple[str, str]]:
        """RecordingUrl, RecordingSid and RecordingDuration for the action, once completed."""
        if self.sid is None or self.duration is None:
            return []
        return [("RecordingUrl", recording_url), ("RecordingSid", self.sid),
                ("RecordingDuration", str(self.duration))]


@contextlib.asynccontextmanager
async def recording_dial(recorder: CallRecorder, verb: Dial, document_url: str,
                         answered: asyncio.Event) -> AsyncIterator[DialRecording]:
    """While the `<Dial>` runs: its recording, started at once (``record-from-ringing``) or when
    the callee answers (`answered`; never if no one does). When the `<Dial>` ends the recording
    stops and is made final and reported before this returns, so the action request can carry
    it; if the `<Dial>` was cut short (an exception), it is stopped and finished in the
    background."""
    recording = DialRecording(recorder, verb, document_url)
    if verb.recording is None:
        yield recording
        return
    waiting: asyncio.Task[None] | None = None
    if verb.records_from_ringing:
        await recording.start()
    else:
        waiting = asyncio.get_running_loop().create_task(
            recording.start_on_answer(answered), name=f"dial {recorder.info.call_sid}: record")
    try:
        yield recording
    except BaseException:
        await _stop_waiting(waiting, answered)
        if recording.sid is not None and recording.sid in recorder.active:
            await recorder.stop_sid(recording.sid)
        raise
    await _stop_waiting(waiting, answered)
    if recording.sid is not None and recording.sid in recorder.active:
        recording.duration = await recorder.stop_and_finish(recording.sid)


async def _stop_waiting(waiting: asyncio.Task[None] | None, answered: asyncio.Event) -> None:
    """The wait for the answer ends: cancelled if no one answered, else awaited (the recording
    it starts is then known)."""
    if waiting is None:
        return
    if not answered.is_set():
        waiting.cancel()
    (outcome,) = await asyncio.gather(waiting, return_exceptions=True)
    if isinstance(outcome, Exception):
        log.error("<Dial record>: starting the recording failed", exc_info=outcome)


def action_params(result: DialResult, child_sid: str) -> list[tuple[str, str]]:
    return [
        ("DialCallStatus", result.status),
        ("DialCallSid", child_sid),
        ("DialCallDuration", str(result.duration)),
        ("DialBridged", "true" if result.bridged else "false"),
    ]
