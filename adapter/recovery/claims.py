"""Which node runs which call (the ``call_owners`` table of `adapter.db.schema`), so that each
node recovers only the calls it was running (and calls no node claimed)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from adapter.db.schema import call_owners_table
from adapter.db.store import Store

__all__ = ["claim_call"]


async def claim_call(store: Store, call_sid: str, node_id: str) -> None:
    """Record that `node_id` runs call `call_sid` (so only that node recovers it). Idempotent."""
    try:
        async with store.engine.begin() as conn:
            await conn.execute(insert(call_owners_table).values(
                call_sid=call_sid, node_id=node_id, claimed_at=datetime.now(UTC)))
    except IntegrityError:
        pass  # claimed already
