"""The PostgreSQL pool's connection checks (adapter/db/pg_engine.py), on the real PostgreSQL
lab: a connection the server closed is replaced at checkout, one that broke in use is not
used again, one that sat idle is pinged first and one in use is not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import column, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapter.db.driver_steps import DriverStatement, Steps, run_steps
from adapter.db.pg_engine import create_pg_engine

_PID = select(column("pid")).select_from(text("(SELECT pg_backend_pid() AS pid) AS backend"))
_SUICIDE = select(column("ended")).select_from(
    text("(SELECT pg_terminate_backend(pg_backend_pid()) AS ended) AS backend"))


def _one(engine: AsyncEngine, statement: Any) -> Steps[Any]:
    ((value,),) = yield DriverStatement(engine, statement), {}
    return value


async def _pid_and_driver(engine: AsyncEngine) -> tuple[int, Any]:
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    return int(pid), driver


async def _terminate(url: str, pid: int) -> None:
    plain = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        assert await plain.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await plain.close()


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    made = create_pg_engine(postgres_url, ping_after_idle=3600)  # no ping in these tests
    yield made
    await made.dispose()


async def test_a_connection_the_server_closed_is_replaced_at_checkout(
    engine: AsyncEngine, postgres_url: str
) -> None:
    pid, driver = await _pid_and_driver(engine)  # now idle in the pool
    closed = asyncio.Event()
    driver.add_termination_listener(lambda _conn: closed.set())
    await _terminate(postgres_url, pid)
    await asyncio.wait_for(closed.wait(), 10)  # asyncpg saw the socket end

    assert await run_steps(engine, _one(engine, _PID)) != pid  # a new connection, no error


async def test_a_connection_that_broke_in_use_is_replaced_before_the_next_use(
    engine: AsyncEngine,
) -> None:
    pid, _driver = await _pid_and_driver(engine)
    with pytest.raises((asyncpg.AdminShutdownError, asyncpg.InterfaceError)):
        await run_steps(engine, _one(engine, _SUICIDE))
    # At once, before asyncpg may have seen the socket end: not the broken connection again.
    assert await run_steps(engine, _one(engine, _PID)) != pid


@pytest.mark.parametrize(("ping_after_idle", "pinged"), [(0.0, True), (3600.0, False)])
async def test_a_connection_is_pinged_after_it_sat_idle_and_not_while_in_use(
    postgres_url: str, ping_after_idle: float, pinged: bool
) -> None:
    engine = create_pg_engine(postgres_url, ping_after_idle=ping_after_idle)
    try:
        _pid, driver = await _pid_and_driver(engine)
        queries: list[str] = []
        driver.add_query_logger(lambda record: queries.append(record.query))
        await run_steps(engine, _one(engine, _PID))
    finally:
        await engine.dispose()
    assert (";" in queries) is pinged
    assert any("pg_backend_pid" in query for query in queries)
