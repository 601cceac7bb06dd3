"""Observability on a real Asterisk call: ``/metrics`` read with prometheus_client's own parser
(the histograms of webhook latency, recording post-processing and callback attempts filled by
one recorded call with a callback), ``/health`` degrading while the AMI connection is cut and
recovering once it is back, and the JSON log lines of a call carrying its CallSid and
RecordingSid (docs/operations.md)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from adapter_harness import adapter_config, call_reported, running_adapter
from asterisk_lab import AsteriskPbx, CallerScript, originate
from fault_lab import TcpProxy
from prometheus_client.exposition import choose_encoder
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import TwimlApp

from adapter.log_context import ContextFilter, JsonFormatter
from adapter.service import Adapter

pytestmark = pytest.mark.asterisk

TO = "+15557653000"
FROM = "+15551230010"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The adapter's log lines as `[log] format = "json"` writes them."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("adapter")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def get(adapter: Adapter, path: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http, \
            http.get(adapter.config.http.public_base_url + path) as response:
        return response.status, response.headers["Content-Type"], await response.text()


def samples(text: str) -> dict[str, list[Sample]]:
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def value(found: list[Sample], name: str, **labels: str) -> float:
    return sum(s.value for s in found if s.name == name
               and all(s.labels.get(k) == v for k, v in labels.items()))


async def test_a_recorded_call_fills_metrics_and_json_logs(
    adapter: Adapter, app: TwimlApp, ami: Any, json_log: io.StringIO
) -> None:
    response = VoiceResponse()
    response.record(timeout=2, max_length=10, play_beep=False,
                    recording_status_callback="/status")
    app.answer("/voice", response)
    app.answer("/status", "")
    await originate(ami, CallerScript.SPEAK_HANGUP, TO, from_number=FROM, caller_name="Obs",
                    variables={"LEAD_S": "1"})
    call_sid = await call_reported(adapter)
    recording_sid = (await app.next_request("/status")).params["RecordingSid"]

    status, content_type, text = await get(adapter, "/metrics")
    # prometheus_client's negotiation: its text format for aiohttp's "Accept: */*"
    assert status == 200 and content_type == choose_encoder("*/*")[1]
    found = samples(text)
    webhook = found["twiml_adapter_webhook_seconds"]
    assert value(webhook, "twiml_adapter_webhook_seconds_count", kind="twiml", outcome="ok") >= 1
    assert value(webhook, "twiml_adapter_webhook_seconds_count", kind="callback",
                 outcome="ok") >= 1
    postprocess = found["twiml_adapter_recording_postprocess_seconds"]
    assert value(postprocess, "twiml_adapter_recording_postprocess_seconds_count",
                 kind="record") == 1
    attempts = found["twiml_adapter_callback_attempts"]
    assert value(attempts, "twiml_adapter_callback_attempts_count", outcome="delivered") >= 1
    assert value(found["twiml_adapter_calls"], "twiml_adapter_calls") == 1
    assert value(found["twiml_adapter_callbacks"], "twiml_adapter_callbacks",
                 status="delivered") >= 1
    assert value(found["twiml_adapter_calls_active"], "twiml_adapter_calls_active") == 0
    assert value(found["twiml_adapter_recordings_active"], "twiml_adapter_recordings_active") == 0
    assert value(found["twiml_adapter_pbx_connected"], "twiml_adapter_pbx_connected") == 1

    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    of_call = [line for line in lines if f"call {call_sid}" in line["message"]]
    assert of_call, "the call logged nothing"
    assert all(line.get("CallSid") == call_sid for line in of_call), of_call
    of_recording = [line for line in of_call if recording_sid in line["message"]]
    assert any("<Record>" in line["message"] for line in of_recording), of_call
    assert all(line.get("RecordingSid") == recording_sid for line in of_recording), of_recording
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)


async def wait_health(adapter: Adapter, status: int, within: float = 20.0) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        got, _, text = await get(adapter, "/health")
        if got == status or loop.time() > deadline:
            assert got == status, text
            report: dict[str, Any] = json.loads(text)
            return report
        await asyncio.sleep(0.2)


async def test_health_degrades_while_ami_is_cut_and_recovers(
    asterisk_lab: AsteriskPbx, app: TwimlApp, tmp_path: Path, ami: Any
) -> None:
    proxy = TcpProxy(asterisk_lab.ami_host, asterisk_lab.ami_port)
    await proxy.start()
    config = adapter_config(asterisk_lab, tmp_path / "data", app.url("/voice"),
                            TWIML_ADAPTER_ASTERISK_PORT=str(proxy.port))
    try:
        async with running_adapter(config) as adapter:
            healthy = await wait_health(adapter, 200)
            assert healthy["status"] == "ok" and healthy["pbx"] == "asterisk"
            assert healthy["pbx_connected"] is True and healthy["database"] is True
            free = healthy["disk_free_bytes"]
            assert free["data_dir"] > 0 and free["spool_dir"] > 0

            await proxy.cut()
            degraded = await wait_health(adapter, 503)
            assert degraded["status"] == "degraded"
            assert degraded["pbx_connected"] is False and degraded["database"] is True
            _, _, text = await get(adapter, "/metrics")
            assert value(samples(text)["twiml_adapter_pbx_connected"],
                         "twiml_adapter_pbx_connected") == 0

            await proxy.restore()
            back = await wait_health(adapter, 200, within=30)
            assert back["pbx_connected"] is True
            assert proxy.connections == 2
    finally:
        await proxy.stop()
