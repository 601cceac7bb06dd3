"""Which node runs which call (the ``call_owners`` table of `adapter.db.schema`), so that each
node recovers only the calls it was running (and calls no node claimed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from adapter.db.group_commit import Statement
from adapter.db.schema import call_owners_table
from adapter.db.store import Store

__all__ = ["claim_call", "claim_insert"]


_CLAIM: Final = insert(call_owners_table)  # one statement object: calls' claims group (executemany)


def claim_insert(call_sid: str, node_id: str) -> Statement:
    """The statement that records that `node_id` runs call `call_sid`, with its values: run in
    the transaction that adds a new call's row (`Store.add_call`), or by `claim_call`."""
    return _CLAIM, {"call_sid": call_sid, "node_id": node_id, "claimed_at": datetime.now(UTC)}


async def claim_call(store: Store, call_sid: str, node_id: str) -> None:
    """Record that `node_id` runs call `call_sid` (so only that node recovers it). Idempotent."""
    try:
        async with store.engine.begin() as conn:
            await conn.execute(*claim_insert(call_sid, node_id))
    except IntegrityError:
        pass  # claimed already
