"""What ``GET /health`` reports: the PBX connection, the database (one cheap query), and the
free disk space of the data and spool folders. Unhealthy (HTTP 503) when the PBX or the
database is down; the fields are listed in docs/operations.md."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from adapter.db.store import Store
from adapter.pbx.base import PbxDriver

__all__ = ["DATABASE_TIMEOUT", "HealthChecks"]

DATABASE_TIMEOUT = 2.0  # seconds a ``SELECT 1`` may take before the database counts as down


class HealthChecks:
    """The service's health, checked each time it is asked for."""

    def __init__(self, driver: PbxDriver, store: Store, folders: Mapping[str, Path]) -> None:
        """`folders`: the folders whose free space is reported, by the name they have in the
        report (``data_dir``, ``spool_dir``)."""
        self._driver = driver
        self._store = store
        self._folders = dict(folders)

    async def report(self) -> dict[str, Any]:
        """``pbx`` (the driver's name), ``pbx_connected``, ``database`` (bool) and
        ``disk_free_bytes`` by folder (None if it cannot be read)."""
        return {
            "pbx": self._driver.name,
            "pbx_connected": self._driver.connected,
            "database": await self._database_up(),
            "disk_free_bytes": {name: await asyncio.to_thread(_free_bytes, folder)
                                for name, folder in self._folders.items()},
        }

    async def _database_up(self) -> bool:
        try:
            async with asyncio.timeout(DATABASE_TIMEOUT):
                async with self._store.engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
        except (OSError, TimeoutError, SQLAlchemyError):
            return False
        return True


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None
