"""Structured logs: ``[log] format`` (or ``TWIML_ADAPTER_LOG_FORMAT``) picks text or JSON; JSON
lines carry the CallSid and RecordingSid of the code they come from, in the tasks it starts
too, without any log call naming them (adapter/log_context.py). The call's own lines on a real
PBX are checked in test_observability_asterisk.py."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys

import pytest

from adapter import log_context
from adapter.config import load_config
from adapter.errors import ConfigError

ENVIRON = {
    "TWIML_ADAPTER_ACCOUNT_SID": "AC" + "0" * 32,
    "TWIML_ADAPTER_ACCOUNT_AUTH_TOKEN": "x" * 32,
    "TWIML_ADAPTER_ASTERISK_USERNAME": "u",
    "TWIML_ADAPTER_ASTERISK_SECRET": "s",
    "TWIML_ADAPTER_NUMBERS": '[{"number": "*", "voice_url": "http://app/v"}]',
}


def test_log_format_is_text_by_default_json_when_asked_and_nothing_else() -> None:
    assert load_config(None, environ=ENVIRON).log_format == "text"
    assert load_config(None, environ={**ENVIRON, "TWIML_ADAPTER_LOG_FORMAT": "JSON"}
                       ).log_format == "json"
    with pytest.raises(ConfigError) as info:
        load_config(None, environ={**ENVIRON, "TWIML_ADAPTER_LOG_FORMAT": "xml"})
    assert info.value.key == "log.format"


async def test_lines_carry_the_sids_of_their_context_and_of_tasks_started_there() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(log_context.ContextFilter())
    handler.setFormatter(log_context.JsonFormatter())
    log = logging.getLogger("adapter.test_json_logs")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info("before")
        with log_context.call("CA1"):
            log.info("in the call")
            with log_context.recording("RE1"):
                await asyncio.create_task(asyncio.to_thread(log.info, "in a task's thread"))
            try:
                raise ValueError("boom")
            except ValueError:
                log.exception("failed")
        log.info("after")
    finally:
        log.removeHandler(handler)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(x["message"], x.get("CallSid"), x.get("RecordingSid")) for x in lines] == [
        ("before", None, None), ("in the call", "CA1", None),
        ("in a task's thread", "CA1", "RE1"), ("failed", "CA1", None), ("after", None, None),
    ]
    assert "ValueError: boom" in lines[3]["exc_info"]
    assert lines[0]["level"] == "INFO" and lines[0]["logger"] == "adapter.test_json_logs"


def test_configure_writes_json_lines_to_stderr() -> None:
    script = (
        "import logging\n"
        "from adapter import log_context\n"
        "log_context.configure('INFO', 'json')\n"
        "with log_context.call('CA9'):\n"
        "    logging.getLogger('adapter.x').info('hello %s', 'there')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=True)
    line = json.loads(done.stderr.strip())
    assert line["message"] == "hello there" and line["CallSid"] == "CA9"
