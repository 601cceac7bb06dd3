"""Group commit of the store's writes: the writes that wait while one transaction is under way
are run together in the next one.

Every write of `adapter.db.store.Store` was its own transaction, and on SQLite the one
connection runs them one after another. Under a burst of calls (bench/real_pbx_load.py: 100
calls arriving within a second on FreeSWITCH) a new call's row waited behind every other
call's writes, each paying a connection checkout, a BEGIN and a COMMIT, and a trip to
aiosqlite's thread for each: adding the row took 0.9 s (median) and up to 2.9 s, before the
call's TwiML could even be fetched. Now concurrent writers share one transaction, so a burst
costs a few commits, not one per write.

On SQLite a transaction whose statements all carry their parameters, each an INSERT or a
statement with RETURNING (its rows counted), runs on the driver as ONE hand-off to aiosqlite's
thread (`adapter.db.driver_steps`): through SQLAlchemy each statement was a hand-off and its
execution machinery, and a write made alone (a call's writes come one after another) cost
650 µs of the loop's CPU (bench/real_pbx_load.py, issue #13 row 5).

Durability is unchanged: a write returns only once the transaction holding it is committed.
Each write's statements run in order; writes of the same shape run together as one
executemany per statement (`GroupCommit._transaction`).
A transaction that fails (a constraint broken, the database gone) is rolled back and each of its
writes is run again on its own, so only a write at fault sees its error, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from sqlalchemy import Executable
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.dml import Insert, Update, UpdateBase

from adapter.db.driver_steps import DriverStatement, Steps, run_steps

__all__ = ["GroupCommit", "Statement"]

Statement = tuple[Executable, Mapping[str, object] | None]
"""One statement of a write, and its parameters (None: none)."""

_Write = tuple[Sequence[Statement], "asyncio.Future[int]"]
_COMPILED_KEPT = 256  # driver statements kept; the store's own are a few per table


class GroupCommit:
    """``await writes.run(statements)``: run them in a transaction shared with the writes that
    wait meanwhile; the first statement's row count, once committed."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._waiting: list[_Write] = []
        self._commit = asyncio.Lock()  # one transaction at a time; the next one gathers meanwhile
        self._on_driver = engine.dialect.name == "sqlite"
        # Driver statements by the Core statement they were compiled from (and the columns
        # of an INSERT): the store's statements are built once (`adapter.db.store`).
        self._compiled: dict[tuple[int, tuple[str, ...]],
                             tuple[Executable, DriverStatement]] = {}

    async def run(self, statements: Sequence[Statement]) -> int:
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append((statements, done))
        async with self._commit:
            if not done.done():  # nobody ran ours yet: run everything waiting
                batch, self._waiting = self._waiting, []
                # Shielded: a writer cancelled meanwhile must not fail the others' writes.
                await asyncio.shield(self._run_batch(batch))
        return done.result()

    async def _run_batch(self, batch: list[_Write]) -> None:
        try:
            counts = await self._transaction([statements for statements, _done in batch])
        except Exception as exc:
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            for statements, done in batch:  # the write at fault, if one is: each on its own
                try:
                    done.set_result((await self._transaction([statements]))[0])
                except Exception as own:
                    done.set_exception(own)
            return
        for (_statements, done), count in zip(batch, counts, strict=True):
            done.set_result(count)

    async def _transaction(self, writes: Sequence[Sequence[Statement]]) -> list[int]:
        """Run `writes` in one transaction; each one's first row count.

        Writes of the same shape (the same statement objects, each with its parameters: every
        call's row and claim, every recording's status update) run as one executemany per
        statement, one trip to the database for all of them: on aiosqlite a trip is a hop to
        its thread and back to the loop, and under load the loop's turn, not SQLite, is what
        a statement waits for. Concurrent writes have no order between them, so running them
        grouped is one of the orders they could have had. An UPDATE group whose total row
        count says some row was missing is run write by write instead (each one's count)."""
        steps = self._driver_steps(writes)
        if steps is not None:
            return await run_steps(self._engine, steps)
        groups: dict[tuple[int, ...], list[int]] = {}
        # A dialect that cannot count the rows of an executemany never groups an UPDATE.
        counted = self._engine.dialect.supports_sane_multi_rowcount
        for index, statements in enumerate(writes):
            if all(parameters is not None for _s, parameters in statements) and (
                    counted or not isinstance(statements[0][0], Update)):
                groups.setdefault(tuple(id(s) for s, _p in statements), []).append(index)
        group_of = {i: group for group in groups.values() if len(group) > 1 for i in group}
        counts = [-1] * len(writes)
        async with self._engine.begin() as conn:
            for index, statements in enumerate(writes):
                group = group_of.get(index)
                if group is not None:
                    if group[0] == index:  # the group runs where its first write came
                        await self._run_group(conn, [writes[i] for i in group], group, counts)
                    continue
                for position, (statement, parameters) in enumerate(statements):
                    result = await conn.execute(statement, parameters)
                    if position == 0:
                        counts[index] = result.rowcount
        return counts

    def _driver_steps(self, writes: Sequence[Sequence[Statement]]) -> Steps[list[int]] | None:
        """`writes` as steps on the driver (see the module docstring), or None where they must
        run through SQLAlchemy."""
        if not self._on_driver:
            return None
        plan = []
        for statements in writes:
            write = []
            for statement, parameters in statements:
                if parameters is None:  # (values inside the statement: SQLAlchemy binds them)
                    return None
                driver = self._driver_statement(statement, parameters)
                if driver is None:
                    return None
                write.append((driver, dict(parameters)))
            plan.append(write)
        return self._steps(plan)

    @staticmethod
    def _steps(plan: list[list[tuple[DriverStatement, dict[str, object]]]]
               ) -> Steps[list[int]]:
        counts = []
        for write in plan:
            for position, (driver, parameters) in enumerate(write):
                rows = yield driver, parameters
                if position == 0:  # an INSERT without RETURNING: its one row (or an error)
                    counts.append(len(rows) if driver.keys else 1)
        return counts

    def _driver_statement(self, statement: Executable, parameters: Mapping[str, object]
                          ) -> DriverStatement | None:
        """`statement` compiled for the driver, or None where its row count could not be
        known (an UPDATE or DELETE without RETURNING)."""
        returns = isinstance(statement, UpdateBase) and bool(statement._returning)
        if not (returns or isinstance(statement, Insert)):
            return None
        columns = tuple(parameters) if isinstance(statement, Insert) else ()
        key = (id(statement), columns)
        known = self._compiled.get(key)
        if known is None or known[0] is not statement:  # (an id reused by a new statement)
            if len(self._compiled) >= _COMPILED_KEPT:
                self._compiled.clear()
            driver = DriverStatement(self._engine, statement, list(columns) or None)
            known = self._compiled[key] = (statement, driver)
        return known[1]

    @staticmethod
    async def _run_group(conn: AsyncConnection, group: list[Sequence[Statement]],
                         indexes: list[int], counts: list[int]) -> None:
        """Run writes of one shape as one executemany per statement."""
        for position, (statement, _parameters) in enumerate(group[0]):
            rows = [dict(statements[position][1] or {}) for statements in group]
            result = await conn.execute(statement, rows)
            if position == 0 and isinstance(statement, Update) and result.rowcount != len(rows):
                raise _MissingRow  # rolled back; each write is run again on its own
        for index in indexes:
            counts[index] = 1


class _MissingRow(Exception):
    """An UPDATE group's total row count fell short: which write found no row is learnt by
    running each on its own."""
