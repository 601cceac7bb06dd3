"""The database suites' shared fixture: a `Store` on a SQLite file (for what only SQLite
has: its one hand-off per transaction, its aiosqlite thread)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapter.db.store import Store


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'adapter.db'}")
    yield opened
    await opened.close()
