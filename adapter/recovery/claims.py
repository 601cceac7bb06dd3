"""Which node runs which call: the ``call_owners`` table, so that each node recovers only the
calls it was running (and calls no node claimed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from sqlalchemy import Column, String, Table, insert, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from adapter.recordings.store import Store, UTCDateTime, metadata

__all__ = ["call_owners_table", "claim_call", "ensure_schema"]

_SCHEMA_LOCK_KEY: Final = 0x7477_6D6C_6F62  # the Store's / outbox's schema lock

call_owners_table = Table(
    "call_owners",
    metadata,
    Column("call_sid", String(34), primary_key=True),
    Column("node_id", String(128), nullable=False),
    Column("claimed_at", UTCDateTime(), nullable=False),
)


async def ensure_schema(conn: AsyncConnection) -> None:
    """Create the ``call_owners`` table if it is missing (under the schema lock)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
    await conn.run_sync(call_owners_table.create, checkfirst=True)


async def claim_call(store: Store, call_sid: str, node_id: str) -> None:
    """Record that `node_id` runs call `call_sid` (so only that node recovers it). Idempotent."""
    async with store.engine.begin() as conn:
        await ensure_schema(conn)
    try:
        async with store.engine.begin() as conn:
            await conn.execute(insert(call_owners_table).values(
                call_sid=call_sid, node_id=node_id, claimed_at=datetime.now(UTC)))
    except IntegrityError:
        pass  # claimed already
