"""Requests a call still owes its app, written down so that a crash cannot lose them.

Two kinds, each written when the obligation starts and read only by startup recovery
(`adapter.recovery`) for calls a killed adapter left running:

* ``call-status``: a REST-created call's ``StatusCallback`` (URL, method, the events asked for).
  Written by `Adapter.queue_call` before the Originate. Recovery sends the call's final
  status (``completed``, or ``canceled`` for a call never answered) if it was asked for and not
  sent yet.
* ``record-action``: the action request of a `<Record>` in progress (the absolute action URL
  and its method). Written when the `<Record>` starts and removed once the
  session has made the request, queued it, or decided there is none (an empty recording, a
  redirect). Recovery makes it, as Twilio does after a hang-up (``Digits=hangup``), when the
  recording has audio.

Every request made from here goes through the outbox with an event id
(`adapter.callbacks.events.call_status_event`, `record_action_event`) that the live session uses as
well, so a request is queued once even when recovery and the session both get to it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import Insert, delete, insert, select

from adapter.db.schema import owed_requests_table
from adapter.db.store import Store

__all__ = [
    "OwedRequest",
    "forget_record_action",
    "note_call_status",
    "note_record_action",
    "owed_requests",
    "record_action_insert",
]

Kind = Literal["call-status", "record-action"]


@dataclass(frozen=True, slots=True)
class OwedRequest:
    """One request a call owes: its `kind`, `ref` (the RecordingSid of a record-action, "" for
    call-status), where it goes and its `data` (call-status: the events asked for)."""

    call_sid: str
    kind: Kind
    ref: str
    url: str
    method: str
    data: dict[str, object]


def _insert(call_sid: str, kind: Kind, ref: str, url: str, method: str,
            data: dict[str, object]) -> Insert:
    return insert(owed_requests_table).values(
        call_sid=call_sid, kind=kind, ref=ref, url=url, method=method.upper(),
        data=json.dumps(data), created_at=datetime.now(UTC))


async def _note(store: Store, owed: Insert) -> None:
    """Write one owed request (an `_insert`) in its own transaction."""
    async with store.engine.begin() as conn:
        await conn.execute(owed)


async def note_call_status(store: Store, call_sid: str, url: str, method: str,
                           events: Sequence[str]) -> None:
    """A REST call asked for status callbacks: recovery may have to send its last one."""
    await _note(store, _insert(call_sid, "call-status", "", url, method,
                               {"events": sorted(events)}))


def record_action_insert(call_sid: str, recording_sid: str, url: str, method: str) -> Insert:
    """The statement that notes a started `<Record>`'s action request (absolute `url`) as
    owed until made; run in the transaction that adds its recording (`Store.add_recording`)."""
    return _insert(call_sid, "record-action", recording_sid, url, method, {})


async def note_record_action(store: Store, call_sid: str, recording_sid: str, url: str,
                             method: str) -> None:
    """A `<Record>` started: its action request (absolute `url`) is owed until made."""
    await _note(store, record_action_insert(call_sid, recording_sid, url, method))


async def forget_record_action(store: Store, recording_sid: str) -> None:
    """The session made (or queued, or has no) action request for that `<Record>`."""
    async with store.engine.begin() as conn:
        await conn.execute(delete(owed_requests_table).where(
            owed_requests_table.c.kind == "record-action",
            owed_requests_table.c.ref == recording_sid))


async def owed_requests(store: Store, call_sids: Sequence[str]) -> list[OwedRequest]:
    """What the calls `call_sids` still owe, oldest first."""
    if not call_sids:
        return []
    t = owed_requests_table.c
    async with store.engine.connect() as conn:
        rows = (await conn.execute(
            select(owed_requests_table).where(t.call_sid.in_(list(call_sids))).order_by(t.id)
        )).mappings().all()
    return [OwedRequest(r["call_sid"], r["kind"], r["ref"], r["url"], r["method"],
                        json.loads(r["data"])) for r in rows]
