"""The outbox's hot statements on the database driver itself (`adapter.db.driver_steps`): the
INSERT of every `enqueue` here; the claim round (`lease.claim`, `lease.outlook`) and the UPDATE
of every delivered result in `lease`.

Each callback is queued by its own transaction, committed before `enqueue` returns. Through
SQLAlchemy Core that transaction cost about 1.3 ms of CPU on SQLite against about 0.5 ms on
the bare driver: at one enqueue after another the outbox could not queue faster than about 500
callbacks/s before delivering any (bench/delivery.py, issue #13 row 3).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from adapter.db.driver_steps import DriverStatement, compiled_for, run_steps
from adapter.db.schema import outbox_table

__all__ = ["OutboxInsert", "outbox_insert"]


class OutboxInsert:
    """``await OutboxInsert(engine).run(rows)``: insert the rows (`rows.new_row` values) in ONE
    transaction on the driver, committed; their ids, in the order given."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._statement = DriverStatement(
            engine, insert(outbox_table).returning(outbox_table.c.id),
            [c.key for c in outbox_table.c if c.key != "id"])

    async def run(self, rows: Sequence[dict[str, object]]) -> list[int]:
        unknown = {k for row in rows for k in row} - set(outbox_table.c.keys())
        if unknown:
            raise ValueError(f"unknown outbox column(s): {', '.join(sorted(unknown))}")
        ids = await run_steps(self._statement.engine, self._statement.run(rows),
                              one_statement=len(rows) == 1)
        return [int(i) for i in ids if i is not None]


def outbox_insert(engine: AsyncEngine) -> OutboxInsert:
    """`engine`'s `OutboxInsert`."""
    return compiled_for(engine, "insert", lambda: OutboxInsert(engine))
