"""The outbox's hottest statement, the INSERT of every `enqueue`, run on the database driver
itself (aiosqlite, asyncpg) instead of through SQLAlchemy's execution layer.

Each callback is queued by its own transaction, committed before `enqueue` returns. Through
SQLAlchemy Core that transaction cost about 1.3 ms of CPU on SQLite and 2.1 ms on PostgreSQL
on the project box, mostly its per-statement execution machinery (the greenlet bridge to the
async driver, execution contexts, cursor wrappers), against about 0.5 ms for the same
transaction on the bare driver: at one enqueue after another the outbox could not queue faster
than about 500 callbacks/s before delivering any (bench/delivery.py, issue #13 row 3).

The statement is still the Core statement of `adapter.db.schema`'s table, compiled once for the
engine's dialect, and its values still go through the columns' own bind processing (e.g.
`UTCDateTime`), so the rows are the ones SQLAlchemy would write. The connection comes from the
engine's pool (on SQLite, its single connection, so the driver path queues with every other
writer); a constraint the row breaks is raised as SQLAlchemy's `IntegrityError`, as before.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapter.db.schema import outbox_table

__all__ = ["OutboxInsert", "outbox_insert"]

_COLUMNS = [c for c in outbox_table.c if c.key != "id"]


class OutboxInsert:
    """``await OutboxInsert(engine).run(rows)``: insert the rows (`rows.new_row` values) in ONE
    transaction on the driver, committed; their ids, in the order given."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        dialect = engine.dialect
        compiled = insert(outbox_table).returning(outbox_table.c.id).compile(
            dialect=dialect, column_keys=[c.key for c in _COLUMNS])
        self._sql = compiled.string
        order = list(compiled.positiontup or ())
        if order != [c.key for c in _COLUMNS]:
            raise RuntimeError(f"unexpected parameter order {order}")
        self._processors: list[tuple[str, Callable[[Any], Any] | None]] = [
            (c.key, c.type.bind_processor(dialect)) for c in _COLUMNS]
        self._sqlite = dialect.name == "sqlite"

    def _args(self, values: dict[str, object]) -> list[Any]:
        return [values.get(key) if process is None else process(values.get(key))
                for key, process in self._processors]

    async def run(self, rows: Sequence[dict[str, object]]) -> list[int]:
        unknown = {k for row in rows for k in row} - {c.key for c in _COLUMNS}
        if unknown:
            raise ValueError(f"unknown outbox column(s): {', '.join(sorted(unknown))}")
        args = [self._args(row) for row in rows]
        async with self._engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            try:
                if self._sqlite:
                    return await self._run_sqlite(driver, args)
                return await self._run_postgresql(driver, args)
            except Exception as exc:
                if _breaks_a_constraint(exc):
                    raise IntegrityError(self._sql, args, exc) from exc
                raise

    async def _run_sqlite(self, driver: Any, args: list[list[Any]]) -> list[int]:
        # The driver opens the transaction itself before the first INSERT (sqlite3's
        # implicit BEGIN); it is committed here or rolled back.
        try:
            ids = [int((await driver.execute_fetchall(self._sql, row))[0][0]) for row in args]
            await driver.commit()
        except BaseException:
            await driver.rollback()
            raise
        return ids

    async def _run_postgresql(self, driver: Any, args: list[list[Any]]) -> list[int]:
        if len(args) == 1:  # one statement is its own transaction: one round trip, not three
            return [int(await driver.fetchval(self._sql, *args[0]))]
        async with driver.transaction():
            return [int(await driver.fetchval(self._sql, *row)) for row in args]


def _breaks_a_constraint(exc: Exception) -> bool:
    """Whether the driver's error `exc` is a broken constraint (SQLite's IntegrityError,
    PostgreSQL's SQLSTATE class 23)."""
    return isinstance(exc, sqlite3.IntegrityError) or str(
        getattr(exc, "sqlstate", "")).startswith("23")


_BY_ENGINE: weakref.WeakKeyDictionary[object, OutboxInsert] = weakref.WeakKeyDictionary()


def outbox_insert(engine: AsyncEngine) -> OutboxInsert:
    """`engine`'s `OutboxInsert`, compiled on first use."""
    found = _BY_ENGINE.get(engine.sync_engine)
    if found is None:
        found = _BY_ENGINE[engine.sync_engine] = OutboxInsert(engine)
    return found
