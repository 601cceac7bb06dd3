"""Transcriptions: Twilio's Transcription resource, one row per `<Record transcribe>`, that is
also the durable job making it (`adapter.transcription.jobs`).

A row is written when the `<Record>` starts (``in-progress``, job ``transcribe``), so a kill at
any later point leaves the job written down; its `job` column says what is still owed. Deleting
a transcription removes its row (Twilio's API then answers 404); deleting a recording deletes
its transcriptions (`Store.delete_recording`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from sqlalchemy import delete, insert, select, update

from adapter.db.schema import transcriptions_table
from adapter.db.store import NotFoundError, Store

__all__ = [
    "TranscriptionRow",
    "add_transcription",
    "delete_transcription",
    "get_transcription",
    "list_transcriptions",
    "owed_transcriptions",
    "remove_transcription",
    "update_transcription",
]

TranscriptionStatus = Literal["in-progress", "completed", "failed"]
Job = Literal["transcribe", "callback", "done"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptionRow:
    """A transcription as Twilio's resource describes it, plus what of its job is owed."""

    sid: str
    account_sid: str
    recording_sid: str
    call_sid: str
    status: TranscriptionStatus
    node_id: str
    date_created: datetime
    date_updated: datetime
    job: Job = "transcribe"
    callback_url: str | None = None  # absolute; None: no transcribeCallback
    transcription_text: str | None = None
    duration: int | None = None
    error: str | None = None  # why it failed


_FIELDS: Final = frozenset(f.name for f in dataclasses.fields(TranscriptionRow)) - {"sid"}
_t = transcriptions_table.c


async def add_transcription(store: Store, row: TranscriptionRow) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(insert(transcriptions_table).values(dataclasses.asdict(row)))


async def update_transcription(store: Store, sid: str, /, **fields: object) -> None:
    """Change `fields` of transcription `sid` (``date_updated``: now); NotFoundError if none."""
    unknown = set(fields) - _FIELDS
    if unknown:
        raise ValueError(f"unknown transcription field(s): {', '.join(sorted(unknown))}")
    fields.setdefault("date_updated", datetime.now(UTC))
    async with store.engine.begin() as conn:
        result = await conn.execute(
            update(transcriptions_table).where(_t.sid == sid).values(fields))
    if result.rowcount == 0:
        raise NotFoundError(f"no transcription {sid}")


async def get_transcription(store: Store, account_sid: str | None, sid: str,
                            *, recording_sid: str | None = None) -> TranscriptionRow | None:
    """Transcription `sid` (of `account_sid` unless None; of `recording_sid` if given)."""
    query = select(transcriptions_table).where(_t.sid == sid)
    if account_sid is not None:
        query = query.where(_t.account_sid == account_sid)
    if recording_sid is not None:
        query = query.where(_t.recording_sid == recording_sid)
    async with store.engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    return None if row is None else TranscriptionRow(**row)


async def list_transcriptions(store: Store, account_sid: str, *,
                              recording_sid: str | None = None, limit: int = 50,
                              offset: int = 0) -> list[TranscriptionRow]:
    """Transcriptions of `account_sid` (of one recording, if given), newest first."""
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset must not be negative")
    query = select(transcriptions_table).where(_t.account_sid == account_sid)
    if recording_sid is not None:
        query = query.where(_t.recording_sid == recording_sid)
    query = query.order_by(_t.date_created.desc(), _t.sid.desc()).limit(limit).offset(offset)
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [TranscriptionRow(**row) for row in rows]


async def delete_transcription(store: Store, account_sid: str, sid: str,
                               *, recording_sid: str | None = None) -> bool:
    """REST DELETE: the row goes (its job with it). False when there was none."""
    query = delete(transcriptions_table).where(_t.account_sid == account_sid, _t.sid == sid)
    if recording_sid is not None:
        query = query.where(_t.recording_sid == recording_sid)
    async with store.engine.begin() as conn:
        result = await conn.execute(query)
    return bool(result.rowcount)


async def remove_transcription(store: Store, sid: str) -> None:
    """A transcription that is not to be (absent recording, out of range): the row goes."""
    async with store.engine.begin() as conn:
        await conn.execute(delete(transcriptions_table).where(_t.sid == sid))


async def owed_transcriptions(store: Store, node_id: str) -> list[TranscriptionRow]:
    """Transcriptions whose job node `node_id` has not finished, oldest first."""
    query = (select(transcriptions_table)
             .where(_t.node_id == node_id, _t.job != "done")
             .order_by(_t.date_created, _t.sid))
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [TranscriptionRow(**row) for row in rows]
