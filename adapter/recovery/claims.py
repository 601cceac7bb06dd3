"""Which node runs which call (the ``call_owners`` table of `adapter.db.schema`), so that each
node recovers only the calls it was running (and calls no node claimed)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Insert, insert
from sqlalchemy.exc import IntegrityError

from adapter.db.schema import call_owners_table
from adapter.db.store import Store

__all__ = ["claim_call", "claim_insert"]


def claim_insert(call_sid: str, node_id: str) -> Insert:
    """The statement that records that `node_id` runs call `call_sid`: run in the transaction
    that adds a new call's row (`Store.add_call`), or by `claim_call`."""
    return insert(call_owners_table).values(call_sid=call_sid, node_id=node_id,
                                            claimed_at=datetime.now(UTC))


async def claim_call(store: Store, call_sid: str, node_id: str) -> None:
    """Record that `node_id` runs call `call_sid` (so only that node recovers it). Idempotent."""
    try:
        async with store.engine.begin() as conn:
            await conn.execute(claim_insert(call_sid, node_id))
    except IntegrityError:
        pass  # claimed already
