"""The calls-and-recordings store (SQLAlchemy 2 async Core): `Store`, `CallRow`, `RecordingRow`.

SQLite through aiosqlite by default (``sqlite+aiosqlite:////data/adapter.db``); the same portable
Core statements run on PostgreSQL through asyncpg. `Store.open` creates or upgrades every table
of `adapter.db.schema` (`adapter.db.migrations`), so the other users of the database (the
callback outbox, owed requests, recovery) reach it through `Store.engine`.

Deleting a recording is a soft delete, as on Twilio: its status becomes ``deleted`` and, like
Twilio's API without ``IncludeSoftDeleted=true``, `get_recording` and `list_recordings` stop
returning it unless asked to. The row (and its `media_path`, so a janitor can remove the file)
stays; purging old deleted rows is a separate job.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args

from sqlalchemy import Table, bindparam, delete, event, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.dml import Insert, Update

from adapter.db.group_commit import GroupCommit, Statement
from adapter.db.migrations import upgrade_schema
from adapter.db.pg_engine import create_pg_engine
from adapter.db.schema import calls_table, recordings_table, transcriptions_table
from adapter.errors import AdapterError

__all__ = [
    "RECORDING_STATUSES",
    "CallRow",
    "NotFoundError",
    "RecordingRow",
    "RecordingStatus",
    "Store",
    "utcnow",
]

RecordingStatus = Literal[
    "in-progress", "paused", "stopped", "processing", "completed", "absent", "failed", "deleted"
]
RECORDING_STATUSES: Final[frozenset[str]] = frozenset(get_args(RecordingStatus))


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class NotFoundError(AdapterError, LookupError):
    """No row with the given SID."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRow:
    """A call as Twilio's Call resource describes it, plus where it lives on the PBX."""

    sid: str
    account_sid: str
    from_: str
    to: str
    direction: str
    status: str
    caller_name: str | None = None
    pbx: str
    pbx_channel: str
    date_created: datetime
    date_updated: datetime
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration: int | None = None
    parent_call_sid: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingRow:
    """A recording as Twilio's Recording resource describes it, plus where its media is.

    `duration` is whole seconds (as Twilio reports it), None until known. `media_path` is set once
    the media is final: the file's name in the media folder (``recordings/RE….wav`` under the data
    folder in rows written before ``storage.media_dir``); the file is always found by its SID
    (`adapter.recordings.layout.media_file`); `pbx_file` is the path as the PBX wrote it.
    `status_callback_events` is space separated, e.g. ``"in-progress completed absent"``.
    """

    sid: str
    account_sid: str
    call_sid: str
    status: RecordingStatus
    source: str
    channels: int = 1
    track: str = "both"
    start_time: datetime
    duration: int | None = None
    media_path: str | None = None
    pbx_file: str | None = None
    error_code: int | None = None
    date_created: datetime
    date_updated: datetime
    name: str | None = None
    status_callback: str | None = None
    status_callback_method: str = "POST"
    status_callback_events: str = "completed"
    trim: str | None = None


_CALL_FIELDS: Final = tuple(f.name for f in dataclasses.fields(CallRow))
_RECORDING_FIELDS: Final = tuple(f.name for f in dataclasses.fields(RecordingRow))


def _values_of(row: CallRow | RecordingRow, fields: tuple[str, ...]) -> dict[str, object]:
    """The row's column values. Not `dataclasses.asdict`, which deep-copies every value
    (they are immutable: str, int, datetime): 40 µs per recording row against 1.2 µs
    (timeit, issue #13 row 5)."""
    return {name: getattr(row, name) for name in fields}


def _checked_update(
    fields: Mapping[str, object], allowed: tuple[str, ...], kind: str
) -> dict[str, object]:
    unknown = set(fields).difference(allowed)
    if unknown:
        raise ValueError(f"unknown {kind} field(s): {', '.join(sorted(unknown))}")
    if "sid" in fields:
        raise ValueError(f"a {kind}'s sid cannot change")
    return dict(fields)


def _check_aware(values: Mapping[str, object]) -> None:
    for name, value in values.items():
        if isinstance(value, datetime) and value.utcoffset() is None:
            raise ValueError(f"{name}: naive datetime {value!r}; pass a timezone-aware value")


def _check_recording_status(status: object) -> None:
    if status not in RECORDING_STATUSES:
        raise ValueError(f"unknown recording status {status!r}")


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# Every use of the engine is one short transaction (no await of anything else inside it, never
# a second connection taken while one is held), so a task waiting for a connection always gets
# one once the transactions ahead of it end: waits are never cut off (no timeout). A pool
# timeout only turned load into lost writes: at 200 concurrent calls, 358 "QueuePool limit
# ... reached" errors, recordings left open and callback results not written (issue #13).
_POOL_WAIT: Final = None


def _create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_pg_engine(url, pool_timeout=_POOL_WAIT)  # its pool checks connections
    if parsed.database in (None, "", ":memory:"):
        # One shared connection, or every pooled connection would see its own empty database.
        # No reset on return, as below (`driver_steps` gives the connection back bare).
        return create_async_engine(url, poolclass=StaticPool, pool_reset_on_return=None)
    # ONE connection: SQLite has a single writer, so concurrent transactions on several
    # connections only queued for its write lock inside the busy handler (which sleeps, then
    # retries: under a burst the throughput collapsed and waits ran into "database is locked"
    # and the pool's timeout). On one connection they queue in the pool instead, in order,
    # and each runs at once when its turn comes. Other processes (the CLI) still meet the busy
    # timeout. No reset on return: every use goes through a Connection, whose close already
    # ends its transaction (commit in begin(), rollback otherwise); the pool's extra rollback
    # cost one more trip to aiosqlite's thread per transaction (bench/real_pbx_load.py).
    engine = create_async_engine(url, connect_args={"timeout": 30}, pool_reset_on_return=None,
                                 pool_size=1, max_overflow=0, pool_timeout=_POOL_WAIT)
    event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
    return engine


class Store:
    """Calls and recordings metadata. Create with `await Store.open(url)`."""

    def __init__(self, engine: AsyncEngine, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self._clock = clock
        self._writes = GroupCommit(engine)  # the hot writes: a call's and a recording's rows

    @classmethod
    async def open(cls, url: str, *, clock: Callable[[], datetime] = utcnow) -> Store:
        """Connect to `url` (e.g. ``sqlite+aiosqlite:////data/adapter.db``), create every
        missing table and add every missing column (`upgrade_schema`). `clock` supplies
        ``date_updated`` on updates."""
        engine = _create_engine(url)
        try:
            async with engine.begin() as conn:
                await upgrade_schema(conn)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine, clock)

    async def close(self) -> None:
        await self.engine.dispose()

    # -- calls ----------------------------------------------------------------------------

    async def add_call(self, call: CallRow, *also: Statement) -> None:
        """Insert `call`; `also`: statements run in the same transaction (its owner's claim)."""
        values = _values_of(call, _CALL_FIELDS)
        _check_aware(values)
        await self._insert(calls_table, values, also)

    async def update_call(self, sid: str, /, **fields: object) -> None:
        """Change `fields` of call `sid`; ``date_updated`` becomes now unless given.

        Raises NotFoundError when there is no such call, ValueError for an unknown field.
        """
        await self._update(calls_table, sid, _checked_update(fields, _CALL_FIELDS, "call"),
                           "call")

    async def get_call(self, sid: str) -> CallRow | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(calls_table).where(calls_table.c.sid == sid))
            ).mappings().first()
        return None if row is None else CallRow(**row)

    # -- recordings -----------------------------------------------------------------------

    async def add_recording(self, rec: RecordingRow, *also: Statement) -> None:
        """Insert `rec`; `also`: statements run in the same transaction (what the start of
        the recording owes, e.g. a `<Record>`'s action: one commit, not two)."""
        _check_recording_status(rec.status)
        values = _values_of(rec, _RECORDING_FIELDS)
        _check_aware(values)
        await self._insert(recordings_table, values, also)

    async def _insert(self, table: Table, values: dict[str, object],
                      also: tuple[Statement, ...]) -> None:
        """Insert one row of `table`, then run `also`, in one transaction (shared with the
        writes waiting meanwhile: `adapter.db.group_commit`)."""
        await self._writes.run([(_insert_of(table), values), *also])

    async def update_recording(self, sid: str, /, **fields: object) -> None:
        """Change `fields` of recording `sid`; ``date_updated`` becomes now unless given.

        Raises NotFoundError when there is no such recording, ValueError for an unknown field
        or status.
        """
        values = _checked_update(fields, _RECORDING_FIELDS, "recording")
        if "status" in values:
            _check_recording_status(values["status"])
        await self._update(recordings_table, sid, values, "recording")

    async def _update(self, table: Table, sid: str, values: dict[str, object], kind: str) -> None:
        """Write `values` (``date_updated``: now unless given) to row `sid` of `table`;
        NotFoundError when there is none."""
        values.setdefault("date_updated", self._clock())
        _check_aware(values)
        found = await self._writes.run([(_update_of(table, tuple(values)),
                                         {**values, _WHERE_SID: sid})])
        if found == 0:
            raise NotFoundError(f"no {kind} {sid}")

    async def get_recording(
        self, account_sid: str, sid: str, *, include_soft_deleted: bool = False
    ) -> RecordingRow | None:
        """Recording `sid` of `account_sid`, or None (also when deleted, unless asked)."""
        query = select(recordings_table).where(
            recordings_table.c.account_sid == account_sid, recordings_table.c.sid == sid
        )
        if not include_soft_deleted:
            query = query.where(recordings_table.c.status != "deleted")
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else RecordingRow(**row)

    async def list_recordings(
        self,
        account_sid: str,
        *,
        call_sid: str | None = None,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
        include_soft_deleted: bool = False,
    ) -> list[RecordingRow]:
        """Recordings of `account_sid` (of one call, if `call_sid`), newest first as on Twilio.

        `created_from` (inclusive) and `created_before` (exclusive) bound ``date_created``.
        """
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        _check_aware({"created_from": created_from, "created_before": created_before})
        query = select(recordings_table).where(recordings_table.c.account_sid == account_sid)
        if call_sid is not None:
            query = query.where(recordings_table.c.call_sid == call_sid)
        if created_from is not None:
            query = query.where(recordings_table.c.date_created >= created_from)
        if created_before is not None:
            query = query.where(recordings_table.c.date_created < created_before)
        if not include_soft_deleted:
            query = query.where(recordings_table.c.status != "deleted")
        query = (
            query.order_by(recordings_table.c.date_created.desc(), recordings_table.c.sid.desc())
            .limit(limit)
            .offset(offset)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [RecordingRow(**row) for row in rows]

    async def list_calls(
        self, account_sid: str, *, limit: int = 50, offset: int = 0
    ) -> list[CallRow]:
        """Calls of `account_sid`, newest first."""
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        query = (
            select(calls_table)
            .where(calls_table.c.account_sid == account_sid)
            .order_by(calls_table.c.date_created.desc(), calls_table.c.sid.desc())
            .limit(limit)
            .offset(offset)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [CallRow(**row) for row in rows]

    async def delete_recording(self, account_sid: str, sid: str) -> bool:
        """Soft-delete: status becomes ``deleted``, and its transcriptions are deleted (as on
        Twilio). False when there was nothing to delete (unknown, another account's, or already
        deleted)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(recordings_table)
                .where(
                    recordings_table.c.account_sid == account_sid,
                    recordings_table.c.sid == sid,
                    recordings_table.c.status != "deleted",
                )
                .values(status="deleted", date_updated=self._clock())
            )
            if result.rowcount:
                await conn.execute(delete(transcriptions_table).where(
                    transcriptions_table.c.recording_sid == sid))
        return bool(result.rowcount)


# The statements of the hot writes, built once per table (and set of columns) and run with
# their values as parameters: building ``insert(t).values(v)`` / ``update(t)…`` for every write
# was most of a write's CPU time (issue #13 row 5). The column sets are the code's own (at most
# a few per table), so the cache stays small.
_WHERE_SID: Final = "where_sid"
_INSERTS: dict[str, Insert] = {}
_UPDATES: dict[tuple[str, tuple[str, ...]], Update] = {}


def _insert_of(table: Table) -> Insert:
    statement = _INSERTS.get(table.name)
    if statement is None:
        statement = _INSERTS[table.name] = insert(table)
    return statement


def _update_of(table: Table, columns: tuple[str, ...]) -> Update:
    """``UPDATE table SET <columns> WHERE sid = :where_sid``."""
    key = (table.name, columns)
    statement = _UPDATES.get(key)
    if statement is None:
        statement = _UPDATES[key] = (
            update(table).where(table.c.sid == bindparam(_WHERE_SID))
            .values({name: bindparam(name) for name in columns})
            .returning(table.c.sid))  # its rows count what it found (`group_commit`)
    return statement

