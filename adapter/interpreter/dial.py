"""`<Dial>`'s bookkeeping around the PBX's bridge: the child call's row (its own ``CA`` SID,
``Direction=outbound-dial``, ``ParentCallSid``), what is not supported yet, and the action
request's parameters (DialCallStatus, DialCallSid, DialCallDuration, DialBridged)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from adapter.db.store import CallRow
from adapter.interpreter.context import SessionContext
from adapter.interpreter.params import CallInfo
from adapter.pbx.base import DialRequest, DialResult
from adapter.sids import CALL, new_sid
from adapter.twiml import Dial

__all__ = ["action_params", "add_child_call", "dial_request", "end_child_call",
           "marking_answered"]

log = logging.getLogger(__name__)


def dial_request(verb: Dial, call_sid: str) -> DialRequest:
    """What the PBX is asked to do; logs the attributes not supported yet (ignored)."""
    for attribute, value, default in (("hangupOnStar", verb.hangup_on_star, False),
                                      ("record", verb.record, "do-not-record")):
        if value != default:
            log.warning("call %s: <Dial %s=%r> is not supported yet; ignored",
                        call_sid, attribute, value)
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


def action_params(result: DialResult, child_sid: str) -> list[tuple[str, str]]:
    return [
        ("DialCallStatus", result.status),
        ("DialCallSid", child_sid),
        ("DialCallDuration", str(result.duration)),
        ("DialBridged", "true" if result.bridged else "false"),
    ]
