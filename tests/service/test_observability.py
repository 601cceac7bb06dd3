"""The same observability on both PBXs (the shared rigs of tests/support/pbx_rigs.py): after a
recorded call with a callback, the metrics parse with prometheus_client's parser and have the
call's histograms, and the health report says the PBX is connected. The Asterisk-only half (the AMI
connection cut, JSON logs) is test_observability_asterisk.py."""

from __future__ import annotations

from pbx_rigs import Caller, Rig, finished, pbx, rig  # noqa: F401 - pytest fixtures
from prometheus_client.parser import text_string_to_metric_families
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import TwimlApp

from adapter.http.health import HealthChecks


async def test_metrics_and_health_after_a_recorded_call(rig: Rig, app: TwimlApp) -> None:  # noqa: F811
    response = VoiceResponse()
    response.record(timeout=2, max_length=10, play_beep=False,
                    recording_status_callback="/status")
    app.answer("/voice", response)
    app.answer("/status", "")
    await rig.call(Caller(then="hangup"))
    await finished(rig)
    await rig.adapter.ctx.outbox.wait_idle(20)  # type: ignore[union-attr]
    await app.next_request("/status")

    # Read in-process: the FreeSWITCH rig serves no HTTP (``/metrics`` and ``/health`` over HTTP
    # are in test_observability_asterisk.py and tests/http/test_health.py).
    adapter = rig.adapter
    assert adapter.driver is not None and adapter.ctx is not None
    text = adapter.metrics.render()
    health = await HealthChecks(adapter.driver, adapter.ctx.store,
                                {"data_dir": adapter.config.data_dir}).report()
    counts = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for family in text_string_to_metric_families(text) for s in family.samples}
    assert counts[("twiml_adapter_webhook_seconds_count",
                   (("kind", "twiml"), ("outcome", "ok")))] >= 1
    assert counts[("twiml_adapter_webhook_seconds_count",
                   (("kind", "callback"), ("outcome", "ok")))] >= 1
    assert counts[("twiml_adapter_recording_postprocess_seconds_count",
                   (("kind", "record"),))] == 1
    assert counts[("twiml_adapter_callback_attempts_count", (("outcome", "delivered"),))] >= 1
    assert counts[("twiml_adapter_pbx_connected", ())] == 1
    assert counts[("twiml_adapter_calls", ())] == 1
    assert health["pbx_connected"] is True
    assert health["pbx"] == rig.adapter.config.pbx and health["database"] is True
