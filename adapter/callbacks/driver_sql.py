"""The outbox's hottest statements, the INSERT of every `enqueue` and the UPDATE of every
delivered result, run on the database driver itself (aiosqlite, asyncpg) instead of through
SQLAlchemy's execution layer.

Each callback is queued by its own transaction, committed before `enqueue` returns. Through
SQLAlchemy Core that transaction cost about 1.3 ms of CPU on SQLite and 2.1 ms on PostgreSQL
on the project box, mostly its per-statement execution machinery (the greenlet bridge to the
async driver, execution contexts, cursor wrappers), against about 0.5 ms for the same
transaction on the bare driver: at one enqueue after another the outbox could not queue faster
than about 500 callbacks/s before delivering any (bench/delivery.py, issue #13 row 3).

The statements are still Core statements of `adapter.db.schema`'s table, compiled once for the
engine's dialect, and their values still go through the columns' own bind processing (e.g.
`UTCDateTime`), so the rows are the ones SQLAlchemy would write. The connection comes from the
engine's pool (on SQLite, its single connection, so the driver path queues with every other
writer); a constraint the row breaks is raised as SQLAlchemy's `IntegrityError`, as before.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapter.db.schema import outbox_table

__all__ = ["DriverStatement", "OutboxInsert", "compiled_for", "outbox_insert"]

T = TypeVar("T")



class DriverStatement:
    """A Core statement with ``RETURNING`` one integer column, compiled once for `engine`'s
    dialect: ``await statement.run(params)`` runs it once per parameter set in ONE transaction
    on the driver, committed; for each, the returned integer (None: no row matched). Values
    the statement holds itself (literals) are bound as compiled; the others come from each
    parameter set by name, through their column's bind processing."""

    def __init__(self, engine: AsyncEngine, statement: Any,
                 column_keys: Sequence[str] | None = None) -> None:
        self._engine = engine
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        self._sql = compiled.string
        self._binds: list[tuple[str, Any, Callable[[Any], Any] | None]] = [
            (name, None if bind.required else bind.effective_value,
             bind.type.bind_processor(dialect))
            for name, bind in ((n, compiled.binds[n]) for n in compiled.positiontup or ())]
        self._names = {name for name, _v, _p in self._binds}
        self._sqlite = dialect.name == "sqlite"

    def _args(self, values: dict[str, object]) -> list[Any]:
        args = []
        for name, fixed, process in self._binds:
            value = values.get(name, fixed)
            args.append(value if process is None else process(value))
        return args

    async def run(self, params: Sequence[dict[str, object]]) -> list[int | None]:
        unknown = {k for values in params for k in values} - self._names
        if unknown:
            raise ValueError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        args = [self._args(values) for values in params]
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

    async def _run_sqlite(self, driver: Any, args: list[list[Any]]) -> list[int | None]:
        # The driver opens the transaction itself before the first statement (sqlite3's
        # implicit BEGIN); it is committed here or rolled back.
        try:
            found = [await driver.execute_fetchall(self._sql, row) for row in args]
            await driver.commit()
        except BaseException:
            await driver.rollback()
            raise
        return [int(rows[0][0]) if rows else None for rows in found]

    async def _run_postgresql(self, driver: Any, args: list[list[Any]]) -> list[int | None]:
        if len(args) == 1:  # one statement is its own transaction: one round trip, not three
            found = [await driver.fetchval(self._sql, *args[0])]
        else:
            async with driver.transaction():
                found = [await driver.fetchval(self._sql, *row) for row in args]
        return [None if value is None else int(value) for value in found]


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
        ids = await self._statement.run(rows)
        return [int(i) for i in ids if i is not None]


def _breaks_a_constraint(exc: Exception) -> bool:
    """Whether the driver's error `exc` is a broken constraint (SQLite's IntegrityError,
    PostgreSQL's SQLSTATE class 23)."""
    return isinstance(exc, sqlite3.IntegrityError) or str(
        getattr(exc, "sqlstate", "")).startswith("23")


_BY_ENGINE: weakref.WeakKeyDictionary[object, dict[str, Any]] = weakref.WeakKeyDictionary()


def compiled_for(engine: AsyncEngine, name: str, build: Callable[[], T]) -> T:
    """`engine`'s statement `name`, built (compiled) by `build` on first use."""
    known = _BY_ENGINE.setdefault(engine.sync_engine, {})
    if name not in known:
        known[name] = build()
    found: T = known[name]
    return found


def outbox_insert(engine: AsyncEngine) -> OutboxInsert:
    """`engine`'s `OutboxInsert`."""
    return compiled_for(engine, "insert", lambda: OutboxInsert(engine))
