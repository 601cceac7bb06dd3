"""Creating and upgrading the database: every table of `adapter.db.schema`, once, at open.

A new database gets every table; an older one also gets the columns and the indexes that later
releases added, and loses the indexes they replaced. On PostgreSQL all of it runs under one
advisory lock (`SCHEMA_LOCK_KEY`), so several nodes starting at once never race each other: one
creates, the others wait and then find everything there.
"""

from __future__ import annotations

import logging
from typing import Final

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import CreateIndex

from adapter.db.schema import metadata

__all__ = ["SCHEMA_LOCK_KEY", "lock_schema", "upgrade_schema"]

log = logging.getLogger(__name__)

# PostgreSQL advisory lock key serialising the schema changes of several starting nodes.
SCHEMA_LOCK_KEY: Final = 0x7477_6D6C_6F62

# Columns added after the first release: (table, column) -> SQL type, added to an older table.
_ADDED_COLUMNS: Final = {
    ("recordings", "trim"): "VARCHAR(16)",
    ("outbox", "claimed_by"): "VARCHAR(128)",
    ("outbox", "lease_until"): "TIMESTAMP WITH TIME ZONE",
    ("outbox", "event"): "VARCHAR(128)",
}
# Indexes added after the first release, by (table, name), as `adapter.db.schema` defines
# them: `create_all` makes a table's indexes only with the table.
_ADDED_INDEXES: Final = (("outbox", "ux_outbox_event"), ("outbox", "ix_outbox_due"),
                         ("outbox", "ix_outbox_open_key_id"))
# Indexes a later one replaced: (state, next_attempt_at) by ix_outbox_due.
_DROPPED_INDEXES: Final = ("ix_outbox_state_due",)


async def lock_schema(conn: AsyncConnection) -> None:
    """Hold the schema lock until `conn`'s transaction ends (PostgreSQL; nothing on SQLite,
    which has a single writer anyway)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})


async def upgrade_schema(conn: AsyncConnection) -> None:
    """Create every missing table and add every missing column, in `conn`'s transaction."""
    await lock_schema(conn)
    await conn.run_sync(metadata.create_all)

    def missing(sync: Connection) -> list[tuple[str, str]]:
        inspector = inspect(sync)
        present = {(table, c["name"]) for table in {t for t, _ in _ADDED_COLUMNS}
                   for c in inspector.get_columns(table)}
        return [key for key in _ADDED_COLUMNS if key not in present]

    for table, column in await conn.run_sync(missing):
        await conn.execute(text(
            f"ALTER TABLE {table} ADD COLUMN {column} {_ADDED_COLUMNS[(table, column)]}"))
        log.info("schema: added column %s.%s", table, column)
    for table, name in _ADDED_INDEXES:
        (index,) = (i for i in metadata.tables[table].indexes if i.name == name)
        await conn.execute(CreateIndex(index, if_not_exists=True))
    for name in _DROPPED_INDEXES:
        await conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
