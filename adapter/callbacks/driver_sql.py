"""The outbox's hot statements run on the database driver itself (aiosqlite, asyncpg) instead
of through SQLAlchemy's execution layer: the INSERT of every `enqueue`, the claim round
(`lease.claim`, `lease.outlook`) and the UPDATE of every delivered result.

Each callback is queued by its own transaction, committed before `enqueue` returns. Through
SQLAlchemy Core that transaction cost about 1.3 ms of CPU on SQLite and 2.1 ms on PostgreSQL
on the project box, mostly its per-statement execution machinery (the greenlet bridge to the
async driver, execution contexts, cursor wrappers), against about 0.5 ms for the same
transaction on the bare driver: at one enqueue after another the outbox could not queue faster
than about 500 callbacks/s before delivering any (bench/delivery.py, issue #13 row 3); claim
rounds and results paid the same per statement.

The statements are still Core statements of `adapter.db.schema`'s table, compiled once for the
engine's dialect, and their values still go through the columns' own bind processing (e.g.
`UTCDateTime`), so the rows are the ones SQLAlchemy would write. The connection comes from the
engine's pool (on SQLite, its single connection, so the driver path queues with every other
writer); a constraint the row breaks is raised as SQLAlchemy's `IntegrityError`, as before.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapter.db.schema import outbox_table

__all__ = ["DriverStatement", "DriverTransaction", "OutboxInsert", "compiled_for",
           "driver_transaction", "outbox_insert"]

T = TypeVar("T")



class DriverStatement:
    """A Core statement compiled once for `engine`'s dialect, run on the driver inside a
    `DriverTransaction` (``await tx.rows(statement, values)``), or alone in its own
    (``await statement.run(params)``: once per parameter set, one commit). Values the
    statement holds itself (literals) are bound as compiled; the others come from each
    parameter set by name, through their column's bind processing; the columns it returns go
    through their types' result processing."""

    def __init__(self, engine: AsyncEngine, statement: Any,
                 column_keys: Sequence[str] | None = None) -> None:
        self._engine = engine
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        self.sql = compiled.string
        self._binds: list[tuple[str, Any, Callable[[Any], Any] | None]] = [
            (name, None if bind.required else bind.effective_value,
             bind.type.dialect_impl(dialect).bind_processor(dialect))
            for name, bind in ((n, compiled.binds[n]) for n in compiled.positiontup or ())]
        self._names = {name for name, _v, _p in self._binds}
        returned = (statement.selected_columns if hasattr(statement, "selected_columns")
                    else statement.returning_column_descriptions)
        self.keys = [c.key if hasattr(c, "key") else c["name"] for c in returned]
        types = [c.type if hasattr(c, "type") else c["type"] for c in returned]
        self._results = [t.dialect_impl(dialect).result_processor(dialect, None)
                         for t in types]

    def args(self, values: dict[str, object]) -> list[Any]:
        """The driver's positional arguments for the parameter set `values`."""
        unknown = set(values) - self._names
        if unknown:
            raise ValueError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        args = []
        for name, fixed, process in self._binds:
            value = values.get(name, fixed)
            args.append(value if process is None else process(value))
        return args

    def row(self, raw: Sequence[Any]) -> list[Any]:
        """A row as the driver returned it, in Python values."""
        return [value if process is None else process(value)
                for value, process in zip(raw, self._results, strict=True)]

    async def run(self, params: Sequence[dict[str, object]]) -> list[int | None]:
        """Run once per parameter set in ONE transaction, committed; for each, the first
        column of the first row it returned (None: no row)."""
        async with driver_transaction(self._engine, one_statement=len(params) == 1) as tx:
            found = [await tx.rows(self, values) for values in params]
        return [int(rows[0][0]) if rows else None for rows in found]


class DriverTransaction:
    """One transaction on the driver connection of a pooled connection (`driver_transaction`);
    ``await tx.rows(statement, values)`` runs a `DriverStatement` in it."""

    def __init__(self, engine: AsyncEngine, driver: Any, sqlite: bool) -> None:
        self.engine = engine
        self._driver = driver
        self._sqlite = sqlite

    async def rows(self, statement: DriverStatement, values: dict[str, object]
                   ) -> list[list[Any]]:
        args = statement.args(values)
        try:
            if self._sqlite:
                raw = await self._driver.execute_fetchall(statement.sql, args)
            else:
                raw = await self._driver.fetch(statement.sql, *args)
        except Exception as exc:
            if _breaks_a_constraint(exc):
                raise IntegrityError(statement.sql, args, exc) from exc
            raise
        return [statement.row(r) for r in raw]


@asynccontextmanager
async def driver_transaction(engine: AsyncEngine, *, one_statement: bool = False
                             ) -> AsyncIterator[DriverTransaction]:
    """A `DriverTransaction` on one of `engine`'s pooled connections (SQLite: its only one, so
    it queues with every other writer): committed when the block ends, else rolled back.
    `one_statement`: the block runs a single statement (on PostgreSQL, its own
    transaction)."""
    async with engine.connect() as conn:
        driver: Any = (await conn.get_raw_connection()).driver_connection
        if engine.dialect.name != "sqlite":
            if one_statement:  # its own transaction: one round trip, not three
                yield DriverTransaction(engine, driver, sqlite=False)
                return
            async with driver.transaction():
                yield DriverTransaction(engine, driver, sqlite=False)
            return
        # sqlite3 opens the transaction itself before the first write (its implicit BEGIN).
        try:
            yield DriverTransaction(engine, driver, sqlite=True)
            await driver.commit()
        except BaseException:
            await driver.rollback()
            raise


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
