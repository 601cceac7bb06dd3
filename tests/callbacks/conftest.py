"""The outbox suites' shared fixture: a `Store` on each database of `db_url` (SQLite and
PostgreSQL, tests/labs/postgres_lab.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapter.db.store import Store


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = await Store.open(db_url)
    yield s
    await s.close()
