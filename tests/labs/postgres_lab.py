"""A real PostgreSQL for the test suite (Debian's `postgresql` package), as a pytest plugin.

`tests/conftest.py` loads this module with ``pytest_plugins``. Fixtures:

* ``postgres_lab`` (session): a throwaway cluster started by ``docker/provision-postgres.sh`` in a
  temporary folder, on a free port on 127.0.0.1, stopped (and the folder removed) at the end of
  the session. Started only when a test asks for it.
* ``postgres_url`` (function): a fresh, empty database in that cluster for one test, as a
  SQLAlchemy URL (``postgresql+asyncpg://postgres@127.0.0.1:PORT/test_...``); dropped afterwards.
* ``db_url`` (function, parametrised ``sqlite`` / ``postgresql``): the database URL a
  store/outbox test runs against; a test that asks for it runs once on each database.

There are no skips: if PostgreSQL cannot start, the tests that need it fail.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

import asyncpg
import pytest
from sqlalchemy.engine import make_url

__all__ = ["PostgresLab", "admin_dsn"]

REPO_ROOT = Path(__file__).resolve().parents[2]
PROVISION_SCRIPT = REPO_ROOT / "docker" / "provision-postgres.sh"


def admin_dsn(url: str) -> str:
    """The asyncpg DSN (``postgresql://...``) of a SQLAlchemy ``postgresql+asyncpg://`` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresLab:
    """One throwaway PostgreSQL cluster; `url` points at its ``postgres`` database."""

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.url = ""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        # Directly under the system temp folder: the postgres user must be able to reach it.
        self.folder = Path(tempfile.mkdtemp(prefix="twiml-pg-"))
        done = subprocess.run(
            [str(PROVISION_SCRIPT), "start", str(self.folder)],
            capture_output=True, text=True, timeout=120, check=False,
        )
        if done.returncode != 0:
            self.stop()
            raise RuntimeError(f"PostgreSQL did not start:\n{done.stdout}\n{done.stderr}")
        self.url = done.stdout.strip().splitlines()[-1]

    def stop(self) -> None:
        if self.folder is None:
            return
        subprocess.run([str(PROVISION_SCRIPT), "stop", str(self.folder)],
                       capture_output=True, timeout=60, check=False)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None

    async def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        name = f"test_{uuid.uuid4().hex[:16]}"
        conn = await asyncpg.connect(admin_dsn(self.url))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    async def drop_database(self, url: str) -> None:
        name = make_url(url).database
        conn = await asyncpg.connect(admin_dsn(self.url))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@pytest.fixture(scope="session")
def postgres_lab() -> Iterator[PostgresLab]:
    with PostgresLab() as lab:
        yield lab


@pytest.fixture
async def postgres_url(postgres_lab: PostgresLab) -> AsyncIterator[str]:
    url = await postgres_lab.create_database()
    try:
        yield url
    finally:
        await postgres_lab.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'adapter.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
