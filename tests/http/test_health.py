"""``/health`` without a PBX: 200 while the PBX and the database answer, 503 (with the failing
part false) when either does not; free disk space of each folder. The PBX connection cut for
real: test_observability_asterisk.py."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import uvicorn
from adapter_harness import http_config

from adapter.db.store import Store
from adapter.http import build_app
from adapter.http.health import HealthChecks
from adapter.metrics import Metrics


async def get_health(base: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(base + "/health") as response:
        return response.status, await response.json()


class StubDriver:
    name = "asterisk"
    connected = True


async def test_health_reports_pbx_database_and_disk(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    store = await Store.open(f"sqlite+aiosqlite:///{data / 'adapter.db'}")
    driver = StubDriver()
    health = HealthChecks(driver, store, {"data_dir": data, "spool_dir": tmp_path / "gone"})  # type: ignore[arg-type]
    server = uvicorn.Server(uvicorn.Config(
        build_app(http_config(data, 0, False), store, Metrics(), health),
        host="127.0.0.1", port=0, log_level="warning", lifespan="off",
    ))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)
        base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        status, report = await get_health(base)
        assert status == 200
        assert report["status"] == "ok" and report["pbx"] == "asterisk"
        assert report["pbx_connected"] is True and report["database"] is True
        assert report["disk_free_bytes"]["data_dir"] > 0
        assert report["disk_free_bytes"]["spool_dir"] is None  # no such folder

        driver.connected = False
        status, report = await get_health(base)
        assert status == 503
        assert report["status"] == "degraded" and report["pbx_connected"] is False

        driver.connected = True
        await store.engine.dispose()
        shutil.rmtree(data)  # the database file and its folder are gone
        status, report = await get_health(base)
        assert status == 503 and report["database"] is False and report["pbx_connected"]
    finally:
        server.should_exit = True
        await task
        await store.close()
