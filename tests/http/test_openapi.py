"""The served API matches its OpenAPI description: schemathesis generates requests from
`GET /openapi.json`'s document and checks every answer (no 5xx, documented status codes,
content types and bodies), against the real HTTP server."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import schemathesis
import uvicorn
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN
from hypothesis import HealthCheck, settings

from adapter.config import load_config
from adapter.db.store import CallRow, Store
from adapter.http import build_app
from adapter.http.openapi import openapi_document
from adapter.metrics import Metrics

schema = schemathesis.openapi.from_dict(openapi_document())
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode())
        .decode()}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The HTTP app on loopback in its own thread and loop (schemathesis calls it
    synchronously), with one finished call in the database."""
    data: Path = tmp_path_factory.mktemp("openapi")
    config = load_config(None, environ={
        "TWIML_ADAPTER_ACCOUNT_SID": ACCOUNT_SID, "TWIML_ADAPTER_ACCOUNT_AUTH_TOKEN": AUTH_TOKEN,
        "TWIML_ADAPTER_STORAGE_DATA_DIR": str(data), "TWIML_ADAPTER_ASTERISK_USERNAME": "u",
        "TWIML_ADAPTER_ASTERISK_SECRET": "s",
        "TWIML_ADAPTER_NUMBERS": '[{"number": "*", "voice_url": "http://127.0.0.1:9/v"}]',
    })
    ready = threading.Event()
    state: dict[str, object] = {}

    async def serve() -> None:
        store = await Store.open(config.database_url)
        now = datetime.now(UTC)
        await store.add_call(CallRow(
            sid="CA" + "1" * 32, account_sid=ACCOUNT_SID, from_="+1555", to="+1666",
            direction="inbound", status="completed", pbx="asterisk", pbx_channel="x",
            date_created=now, date_updated=now))
        server = uvicorn.Server(uvicorn.Config(build_app(config, store, Metrics()),
                                               host="127.0.0.1", port=0, log_level="warning",
                                               lifespan="off"))
        state["server"] = server
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)
        state["port"] = server.servers[0].sockets[0].getsockname()[1]
        ready.set()
        await task
        await store.close()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(20)
    yield f"http://127.0.0.1:{state['port']}"
    state["server"].should_exit = True  # type: ignore[attr-defined]
    thread.join(20)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi(case: schemathesis.Case, served: str) -> None:
    case.call_and_validate(base_url=served, headers=AUTH)
