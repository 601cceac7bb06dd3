"""Metadata store for calls and recordings (SQLAlchemy 2 async Core).

SQLite through aiosqlite by default (``sqlite+aiosqlite:////data/adapter.db``); the same portable
Core statements run on PostgreSQL through asyncpg. All tables live in the module's `metadata`, so
other modules (the callback outbox) put their tables in the same database and reach it through
`Store.engine`.

Datetimes go in as timezone-aware values, are stored as UTC and come back aware (UTC).

Deleting a recording is a soft delete, as on Twilio: its status becomes ``deleted`` and, like
Twilio's API without ``IncludeSoftDeleted=true``, `get_recording` and `list_recordings` stop
returning it unless asked to. The row (and its `media_path`, so a janitor can remove the file)
stays; purging old deleted rows is a separate job.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args

from sqlalchemy import (
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    event,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from adapter.errors import AdapterError

log = logging.getLogger(__name__)

__all__ = [
    "RECORDING_STATUSES",
    "CallRow",
    "NotFoundError",
    "RecordingRow",
    "RecordingStatus",
    "Store",
    "UTCDateTime",
    "calls_table",
    "metadata",
    "recordings_table",
    "utcnow",
]

RecordingStatus = Literal[
    "in-progress", "paused", "stopped", "processing", "completed", "absent", "failed", "deleted"
]
RECORDING_STATUSES: Final[frozenset[str]] = frozenset(get_args(RecordingStatus))
# PostgreSQL advisory lock key serialising table creation by several starting nodes (the same
# key as the outbox's schema changes).
_SCHEMA_LOCK_KEY: Final = 0x7477_6D6C_6F62


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class NotFoundError(AdapterError, LookupError):
    """No row with the given SID."""


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime stored as UTC and always returned timezone-aware (UTC).

    Naive datetimes are refused: their meaning depends on the host's time zone.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware value")
        value = value.astimezone(UTC)
        # SQLite keeps no offset: store the UTC wall-clock time.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData()

calls_table = Table(
    "calls",
    metadata,
    Column("sid", String(34), primary_key=True),
    Column("account_sid", String(34), nullable=False),
    Column("from_", String(255), nullable=False),
    Column("to", String(255), nullable=False),
    Column("direction", String(32), nullable=False),
    Column("status", String(32), nullable=False),
    Column("caller_name", String(255)),
    Column("pbx", String(64), nullable=False),
    Column("pbx_channel", String(255), nullable=False),
    Column("date_created", UTCDateTime(), nullable=False),
    Column("date_updated", UTCDateTime(), nullable=False),
    Column("start_time", UTCDateTime()),
    Column("end_time", UTCDateTime()),
    Column("duration", Integer),
    Column("parent_call_sid", String(34)),
    Index("ix_calls_account_created", "account_sid", "date_created"),
)

recordings_table = Table(
    "recordings",
    metadata,
    Column("sid", String(34), primary_key=True),
    Column("account_sid", String(34), nullable=False),
    Column("call_sid", String(34), nullable=False),
    Column("status", String(16), nullable=False),
    Column("source", String(64), nullable=False),
    Column("channels", Integer, nullable=False),
    Column("track", String(16), nullable=False),
    Column("start_time", UTCDateTime(), nullable=False),
    Column("duration", Integer),
    Column("media_path", Text),
    Column("pbx_file", Text),
    Column("error_code", Integer),
    Column("date_created", UTCDateTime(), nullable=False),
    Column("date_updated", UTCDateTime(), nullable=False),
    Column("name", String(255)),
    Column("status_callback", Text),
    Column("status_callback_method", String(8), nullable=False),
    Column("status_callback_events", String(255), nullable=False),
    # trim-silence | do-not-trim, as asked (for recovery); NULL in rows of older releases.
    Column("trim", String(16)),
    Index("ix_recordings_account_created", "account_sid", "date_created"),
    Index("ix_recordings_call", "call_sid"),
)


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

    `duration` is whole seconds (as Twilio reports it), None until known. `media_path` is relative
    to the data directory; `pbx_file` is the path as the PBX wrote it.
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


_CALL_FIELDS: Final = frozenset(f.name for f in dataclasses.fields(CallRow))
_RECORDING_FIELDS: Final = frozenset(f.name for f in dataclasses.fields(RecordingRow))


def _checked_update(
    fields: Mapping[str, object], allowed: frozenset[str], kind: str
) -> dict[str, object]:
    unknown = set(fields) - allowed
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


def _create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True)
    if parsed.database in (None, "", ":memory:"):
        # One shared connection, or every pooled connection would see its own empty database.
        return create_async_engine(url, poolclass=StaticPool)
    engine = create_async_engine(url, connect_args={"timeout": 30})
    event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
    return engine


# Columns added after the first release: (table, column) -> SQL type, added at open.
_ADDED_COLUMNS: Final = {("recordings", "trim"): "VARCHAR(16)"}


async def _add_missing_columns(conn: AsyncConnection) -> None:
    def missing(sync: Connection) -> list[tuple[str, str]]:
        inspector = inspect(sync)
        present = {(table, c["name"]) for table in {t for t, _ in _ADDED_COLUMNS}
                   for c in inspector.get_columns(table)}
        return [key for key in _ADDED_COLUMNS if key not in present]

    for table, column in await conn.run_sync(missing):
        await conn.execute(text(
            f"ALTER TABLE {table} ADD COLUMN {column} {_ADDED_COLUMNS[(table, column)]}"))
        log.info("store: added column %s.%s", table, column)


class Store:
    """Calls and recordings metadata. Create with `await Store.open(url)`."""

    def __init__(self, engine: AsyncEngine, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self._clock = clock

    @classmethod
    async def open(cls, url: str, *, clock: Callable[[], datetime] = utcnow) -> Store:
        """Connect to `url` (e.g. ``sqlite+aiosqlite:////data/adapter.db``) and create any
        missing table of `metadata`. `clock` supplies ``date_updated`` on updates."""
        engine = _create_engine(url)
        try:
            async with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    # Several nodes starting at once: one creates the tables, the others wait.
                    await conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY}
                    )
                await conn.run_sync(metadata.create_all)
                await _add_missing_columns(conn)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine, clock)

    async def close(self) -> None:
        await self.engine.dispose()

    # -- calls ----------------------------------------------------------------------------

    async def add_call(self, call: CallRow) -> None:
        values = dataclasses.asdict(call)
        _check_aware(values)
        async with self.engine.begin() as conn:
            await conn.execute(insert(calls_table).values(values))

    async def update_call(self, sid: str, /, **fields: object) -> None:
        """Change `fields` of call `sid`; ``date_updated`` becomes now unless given.

        Raises NotFoundError when there is no such call, ValueError for an unknown field.
        """
        values = _checked_update(fields, _CALL_FIELDS, "call")
        values.setdefault("date_updated", self._clock())
        _check_aware(values)
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(calls_table).where(calls_table.c.sid == sid).values(values)
            )
        if result.rowcount == 0:
            raise NotFoundError(f"no call {sid}")

    async def get_call(self, sid: str) -> CallRow | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(calls_table).where(calls_table.c.sid == sid))
            ).mappings().first()
        return None if row is None else CallRow(**row)

    # -- recordings -----------------------------------------------------------------------

    async def add_recording(self, rec: RecordingRow) -> None:
        _check_recording_status(rec.status)
        values = dataclasses.asdict(rec)
        _check_aware(values)
        async with self.engine.begin() as conn:
            await conn.execute(insert(recordings_table).values(values))

    async def update_recording(self, sid: str, /, **fields: object) -> None:
        """Change `fields` of recording `sid`; ``date_updated`` becomes now unless given.

        Raises NotFoundError when there is no such recording, ValueError for an unknown field
        or status.
        """
        values = _checked_update(fields, _RECORDING_FIELDS, "recording")
        if "status" in values:
            _check_recording_status(values["status"])
        values.setdefault("date_updated", self._clock())
        _check_aware(values)
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(recordings_table).where(recordings_table.c.sid == sid).values(values)
            )
        if result.rowcount == 0:
            raise NotFoundError(f"no recording {sid}")

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
        """Soft-delete: status becomes ``deleted``. False when there was nothing to delete
        (unknown, another account's, or already deleted)."""
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
        return bool(result.rowcount)
