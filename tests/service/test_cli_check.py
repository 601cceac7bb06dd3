"""`twiml-adapter check FILE|URL`: every finding printed with its Twilio code; exit 1 if fatal."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from twilio.twiml.voice_response import VoiceResponse


def check(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapter.cli", "check", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True, text=True, timeout=60,
    )


def test_valid_document(tmp_path: Path) -> None:
    response = VoiceResponse()
    response.say("Leave a message")
    response.record(max_length=30, finish_on_key="#")
    path = tmp_path / "ok.xml"
    path.write_text(str(response))
    proc = check(str(path))
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"{path}: OK"


def test_warnings_are_listed_but_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "warn.xml"
    path.write_text('<Response><Record maxLength="0" playBeep="maybe"/><Dance/></Response>')
    proc = check(str(path))
    assert proc.returncode == 0
    codes = {line.split(">: ")[1][:5] for line in proc.stdout.splitlines() if ">: " in line}
    assert {"13612", "13616", "12200"} <= codes, proc.stdout
    assert proc.stdout.strip().endswith("(3 warnings)")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"not xml at all", "12100"),
        (b'<Response><Record recordingStatusCallbackEvent="never"/></Response>', "13621"),
        (b"<Reply/>", "12102"),
        (b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><Response>&x;</Response>',
         "12100"),
    ],
)
def test_fatal_findings_exit_1(body: bytes, code: str) -> None:
    proc = check("-", stdin=body)
    assert proc.returncode == 1
    assert f" {code} " in proc.stdout or f": {code} " in proc.stdout, proc.stdout
    assert "root:" not in proc.stdout  # the external entity was never read


@pytest.fixture
async def served() -> AsyncIterator[str]:
    async def twiml(_request: web.Request) -> web.Response:
        return web.Response(text="<Response><Pause length='-1'/></Response>",
                            content_type="text/xml")

    app = web.Application()
    app.router.add_get("/twiml", twiml)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/twiml"
    await runner.cleanup()


async def test_url_is_fetched_with_its_content_type(served: str) -> None:
    proc = await asyncio.to_thread(check, served)
    assert proc.returncode == 0
    assert "13910" in proc.stdout


def test_a_verb_not_supported_yet_fails_the_check_with_its_line(tmp_path: Path) -> None:
    """A document whose call would reach <Connect> (not supported yet) fails at run time with
    the error prompt: the check fails on it too, with 12200 and the line."""
    path = tmp_path / "ivr.xml"
    path.write_text('<Response>\n<Say>Press one</Say>\n<Connect action="/c"/>\n</Response>')
    proc = check(str(path))
    assert proc.returncode == 1, proc.stdout
    assert f"{path}: line 3: <Connect>: 12200 <Connect> is not supported" in proc.stdout
    assert "OK" not in proc.stdout


def test_a_speech_gather_passes_the_check(tmp_path: Path) -> None:
    """<Gather input="speech"> and "dtmf speech" run (issue 14): the check says OK."""
    path = tmp_path / "speech.xml"
    path.write_text('<Response><Gather input="speech" speechTimeout="auto"/>'
                    '<Gather input="dtmf speech"/></Response>')
    proc = check(str(path))
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.strip() == f"{path}: OK"


def test_a_verb_after_the_end_of_the_call_does_not_fail_the_check(tmp_path: Path) -> None:
    """Nothing after <Hangup> runs, so an unsupported verb there changes nothing."""
    path = tmp_path / "end.xml"
    path.write_text("<Response><Say>Bye</Say><Hangup/><Gather/></Response>")
    proc = check(str(path))
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.strip() == f"{path}: OK"


def test_help_names_both_pbxs() -> None:
    proc = subprocess.run([sys.executable, "-m", "adapter.cli", "--help"], capture_output=True,
                          text=True, timeout=60, check=True)
    assert "Asterisk and FreeSWITCH" in proc.stdout
