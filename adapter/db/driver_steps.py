"""Statements run on the database driver itself (aiosqlite, asyncpg) instead of through
SQLAlchemy's execution layer, and a transaction written once as its steps.

Through SQLAlchemy Core a short transaction cost about 1.3 ms of CPU on SQLite and 2.1 ms on
PostgreSQL on the project box, mostly its per-statement execution machinery (the greenlet
bridge to the async driver, execution contexts, cursor wrappers), against about 0.5 ms for the
same transaction on the bare driver (bench/delivery.py, issue #13 row 3). The hot statements
(the outbox's: `adapter.callbacks.driver_sql`; the store's writes: `adapter.db.group_commit`)
run here.

A `DriverStatement` is a Core statement compiled once for the engine's dialect, and its values
still go through the columns' own bind processing (e.g. `UTCDateTime`), so the rows are the
ones SQLAlchemy would write. A transaction is written as its steps (`Steps`, a generator of
statements) and driven by `run_steps`: on SQLite all of it in aiosqlite's thread, one trip; on
PostgreSQL statement by statement on asyncpg. The connection comes from the engine's pool (on
SQLite, its single connection, so the driver path queues with every other writer); a
constraint a row breaks is raised as SQLAlchemy's `IntegrityError`.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["DriverStatement", "Steps", "compiled_for", "run_steps"]

T = TypeVar("T")


class DriverStatement:
    """A Core statement compiled once for `engine`'s dialect, run on the driver as a step of
    a transaction (`Steps`: ``rows = yield statement, values``; `run`: once per parameter
    set). Values the statement holds itself (literals) are bound as compiled; the others come
    from each parameter set by name, through their column's bind processing; the columns it
    returns go through their types' result processing."""

    def __init__(self, engine: AsyncEngine, statement: Any,
                 column_keys: Sequence[str] | None = None) -> None:
        self.engine = engine
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

    def run(self, params: Sequence[dict[str, object]]) -> Steps[list[int | None]]:
        """Run once per parameter set (a transaction's steps, for `run_steps`); for each,
        the first column of the first row it returned (None: no row)."""
        found = []
        for values in params:
            found.append((yield self, values))
        return [int(rows[0][0]) if rows else None for rows in found]


Steps = Generator[tuple[DriverStatement, dict[str, object]], list[list[Any]], T]
"""A transaction as the statements it runs: a generator that yields each `DriverStatement`
with its parameter set and is sent back its rows (in Python values); what it returns is the
transaction's result. It runs wherever `run_steps` drives it (on SQLite, in the database's
own thread), so it must not touch the event loop."""


async def run_steps(engine: AsyncEngine, steps: Steps[T], *, one_statement: bool = False
                    ) -> T:
    """Run the transaction `steps` on the driver connection of one of `engine`'s pooled
    connections (SQLite: its only one, so it queues with every other writer), committed; on
    an error, rolled back. A broken constraint is SQLAlchemy's `IntegrityError`, thrown into
    `steps` where its statement was.

    On SQLite the whole transaction is ONE trip to aiosqlite's thread (`_sqlite_thread`): a
    claim round there was 3-5 trips, each a hand-off of the GIL and a turn of the loop to
    come back, and the loop spent more time on those hand-offs than on the statements
    (bench/delivery.py, issue #13 row 3). `one_statement`: the steps run a single statement
    (on PostgreSQL, its own transaction: one round trip, not three)."""
    if engine.dialect.name == "sqlite":
        return await _run_on_sqlite(engine, steps)
    async with engine.connect() as conn:
        driver: Any = (await conn.get_raw_connection()).driver_connection
        if one_statement:
            return await _drive(steps, driver.fetch, spread=True)
        async with driver.transaction():
            return await _drive(steps, driver.fetch, spread=True)


async def _run_on_sqlite(engine: AsyncEngine, steps: Steps[T]) -> T:
    """`run_steps` on SQLite, on the pool's connection taken bare (no `AsyncConnection`
    around it: its checkout and close were three more greenlet switches; a lone store write
    went from 251 to 176 µs of the loop's CPU). The pool resets nothing on return
    (`adapter.db.store`), so giving it back needs no trip."""
    raw = await engine.raw_connection()
    try:
        driver: Any = raw.driver_connection
        in_thread = _sqlite_thread(driver)
        if in_thread is not None:
            done: T = await in_thread(_drive_sqlite, driver._conn, steps)
            return done
        try:  # an aiosqlite without that hook: a trip per statement
            result = await _drive(steps, driver.execute_fetchall, spread=False)
            await driver.commit()
        except BaseException:
            await driver.rollback()
            raise
        return result
    finally:
        raw.close()


def _sqlite_thread(driver: Any) -> Callable[..., Awaitable[Any]] | None:
    """aiosqlite's way to run a function in the connection's own thread (``_execute``, with
    the sqlite3 connection ``_conn``), or None where this aiosqlite has none. aiosqlite
    0.17-0.22 have both; its public methods run one statement per trip."""
    run = getattr(driver, "_execute", None)
    has_connection = isinstance(getattr(type(driver), "_conn", None), property)
    return run if callable(run) and has_connection else None


def _drive_sqlite(conn: sqlite3.Connection, steps: Steps[T]) -> T:
    """`steps` on the sqlite3 connection, committed (run in the connection's thread)."""
    try:
        request = next(steps)
        while True:
            statement, values = request
            args = statement.args(values)
            try:
                raw = conn.execute(statement.sql, args).fetchall()
            except sqlite3.IntegrityError as exc:
                request = steps.throw(IntegrityError(statement.sql, args, exc))
                continue
            request = steps.send([statement.row(r) for r in raw])
    except StopIteration as stop:
        conn.commit()
        result: T = stop.value
        return result
    except BaseException:
        conn.rollback()
        raise


async def _drive(steps: Steps[T], fetch: Callable[..., Awaitable[Any]], *, spread: bool) -> T:
    """`steps`, each statement awaited on the driver (`fetch(sql, args)`, or with the args
    spread: asyncpg's ``fetch(sql, *args)``)."""
    try:
        request = next(steps)
        while True:
            statement, values = request
            args = statement.args(values)
            try:
                raw = await (fetch(statement.sql, *args) if spread else
                             fetch(statement.sql, args))
            except Exception as exc:
                if not _breaks_a_constraint(exc):
                    raise
                request = steps.throw(IntegrityError(statement.sql, args, exc))
                continue
            request = steps.send([statement.row(r) for r in raw])
    except StopIteration as stop:
        result: T = stop.value
        return result


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
