"""The media routes, health and metrics, served by uvicorn on loopback and fetched with aiohttp."""

from __future__ import annotations

import asyncio
import base64
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import uvicorn
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN, http_config

from adapter.db.store import RecordingRow, Store
from adapter.http import build_app
from adapter.metrics import Metrics

SID = "RE" + "a" * 32
OTHER_ACCOUNT = "AC" + "9" * 32


def auth(user: str = ACCOUNT_SID, password: str = AUTH_TOKEN) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture(params=[False, True], ids=["media-auth", "public-media"])
async def served(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, bool]]:
    public = bool(request.param)
    data = tmp_path / "data"
    (data / "recordings").mkdir(parents=True)
    await asyncio.to_thread(subprocess.run, [
        "sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(data / "recordings" / f"{SID}.wav"),
        "synth", "2", "sine", "440"], check=True)
    store = await Store.open(f"sqlite+aiosqlite:///{data}/adapter.db")
    now = datetime.now(UTC)
    await store.add_recording(RecordingRow(
        sid=SID, account_sid=ACCOUNT_SID, call_sid="CA" + "b" * 32, status="completed",
        source="RecordVerb", channels=1, track="inbound", start_time=now, duration=2,
        media_path=f"recordings/{SID}.wav", date_created=now, date_updated=now,
    ))
    server = uvicorn.Server(uvicorn.Config(
        build_app(http_config(data, 0, public), store, Metrics(), {"pbx_connected": True}),
        host="127.0.0.1", port=0, log_level="warning", lifespan="off",
    ))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", public
    server.should_exit = True
    await task
    await store.close()


async def test_media_formats_and_auth(served: tuple[str, bool]) -> None:
    base, public = served
    url = f"{base}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{SID}"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers=auth()) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "audio/x-wav"
            assert (await response.read())[:4] == b"RIFF"
        async with http.get(url + ".mp3", headers=auth()) as response:
            assert response.status == 200 and response.headers["Content-Type"] == "audio/mpeg"
        async with http.get(url + ".json", headers=auth()) as response:
            body = await response.json()
            assert body["sid"] == SID and body["duration"] == "2" and body["status"] == "completed"
            assert body["uri"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{SID}.json"
        # Without credentials: media only when public_media is on; metadata never.
        async with http.get(url) as response:
            assert response.status == (200 if public else 401)
        async with http.get(url + ".json") as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("Basic")
            assert (await response.json())["code"] == 20003
        async with http.get(url, headers=auth(password="x" * 32)) as response:
            assert response.status == (200 if public else 401)


async def test_unknown_or_foreign_recordings_are_404(served: tuple[str, bool]) -> None:
    base, _public = served
    async with aiohttp.ClientSession() as http:
        for path in (
            f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE{'0' * 32}.json",
            f"/2010-04-01/Accounts/{OTHER_ACCOUNT}/Recordings/{SID}.json",
            f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/..%2f..%2fetc%2fpasswd",
        ):
            async with http.get(base + path, headers=auth()) as response:
                assert response.status == 404, path
                body = await response.json()
                assert body["code"] == 20404 and body["status"] == 404
                assert "Traceback" not in await response.text()


async def test_health_and_metrics(served: tuple[str, bool]) -> None:
    base, _public = served
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/health") as response:
            assert response.status == 200
            assert (await response.json())["status"] == "ok"
        await http.get(f"{base}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{SID}",
                       headers=auth())
        async with http.get(base + "/metrics") as response:
            text = await response.text()
            assert 'twiml_adapter_media_requests{status="wav"} 1' in text
