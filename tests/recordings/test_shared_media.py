"""Two adapter nodes, one PostgreSQL, one media folder (docs/scaling.md), on each real PBX.

Node A runs in the test's process on the real PBX and records a `<Record>` voicemail; node B is
a second process (`twiml-adapter serve`) with its own data folder
and node identity, started once A's call is over. B serves the recording's WAV and MP3 at its own
RecordingUrl, from the shared folder alone (no file of A's data folder), and deletes it through
the REST API (the official `twilio` client); A then no longer has it either."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pbx_rigs
import pytest
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN
from pbx_rigs import Caller, finished, running_rig
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import TwimlApp

from adapter.config import Config
from adapter.node import node_identity
from adapter.recordings import layout

pbx = pbx_rigs.pbx
# `twiml-adapter serve` of this checkout (the venv's console script may be another checkout's).
SERVE = [sys.executable, "-m", "adapter.cli", "serve"]
AUTH = {"Authorization": aiohttp.encode_basic_auth(ACCOUNT_SID, AUTH_TOKEN)}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def node_environ(config: Config, data_dir: Path) -> dict[str, str]:
    """Another node's settings: `config`'s account, database, media folder and PBX, with its own
    data folder and ports."""
    environ = {
        "TWIML_ADAPTER_ACCOUNT_SID": config.account_sid,
        "TWIML_ADAPTER_ACCOUNT_AUTH_TOKEN": config.auth_token,
        "TWIML_ADAPTER_HTTP_LISTEN": f"127.0.0.1:{_free_port()}",
        "TWIML_ADAPTER_STORAGE_DATA_DIR": str(data_dir),
        "TWIML_ADAPTER_STORAGE_MEDIA_DIR": str(config.media_dir),
        "TWIML_ADAPTER_STORAGE_DATABASE_URL": config.database_url,
        "TWIML_ADAPTER_PBX_TYPE": config.pbx,
        "TWIML_ADAPTER_NUMBERS": '[{"number": "*", "voice_url": "http://127.0.0.1:9/voice"}]',
    }
    if config.asterisk is not None:
        a = config.asterisk
        environ.update({
            "TWIML_ADAPTER_ASTERISK_HOST": a.host, "TWIML_ADAPTER_ASTERISK_PORT": str(a.port),
            "TWIML_ADAPTER_ASTERISK_USERNAME": a.username,
            "TWIML_ADAPTER_ASTERISK_SECRET": a.secret,
            "TWIML_ADAPTER_ASTERISK_SPOOL_DIR": str(a.spool_dir),
            "TWIML_ADAPTER_ASTERISK_SPOOL_DIR_LOCAL": str(a.spool_dir_local),
        })
    else:
        f = config.freeswitch
        assert f is not None
        environ.update({
            "TWIML_ADAPTER_FREESWITCH_LISTEN": f"127.0.0.1:{_free_port()}",
            "TWIML_ADAPTER_FREESWITCH_ESL_HOST": f.esl_host,
            "TWIML_ADAPTER_FREESWITCH_ESL_PORT": str(f.esl_port),
            "TWIML_ADAPTER_FREESWITCH_ESL_PASSWORD": f.esl_password,
            "TWIML_ADAPTER_FREESWITCH_SPOOL_DIR": str(f.spool_dir),
            "TWIML_ADAPTER_FREESWITCH_SPOOL_DIR_LOCAL": str(f.spool_dir_local),
        })
    return environ


NodeStarter = Callable[[dict[str, str], Path], subprocess.Popen[bytes]]


def log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


@pytest.fixture
def start_node() -> Iterator[NodeStarter]:
    """Starts `twiml-adapter serve` with these settings, its output into a log file; the
    process is terminated (by its own pid) after the test."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(environ: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as log_file:
            process = subprocess.Popen(SERVE, env={**os.environ, **environ},
                                       stdout=log_file, stderr=subprocess.STDOUT)
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def wait_healthy(session: aiohttp.ClientSession, base: str,
                       process: subprocess.Popen[bytes], log: Path) -> None:
    """Until node B answers /health with 200 (it is up, its database and PBX reached)."""
    async with asyncio.timeout(120):
        while True:
            assert process.poll() is None, log_tail(log)
            try:
                async with session.get(f"{base}/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.2)  # a process starting: polled, it sends no event


async def test_a_recording_made_on_node_a_is_served_and_deleted_by_node_b(
    pbx: tuple[str, Any, Any], app: TwimlApp, tmp_path: Path, postgres_url: str,
    start_node: NodeStarter,
) -> None:
    shared = tmp_path / "shared-media"  # the NFS mount of a real deployment
    shared_settings = {"TWIML_ADAPTER_STORAGE_DATABASE_URL": postgres_url,
                       "TWIML_ADAPTER_STORAGE_MEDIA_DIR": str(shared)}
    response = VoiceResponse()
    response.record(action="/done", finish_on_key="#", timeout=0)
    app.answer("/voice", response)
    app.answer("/done", VoiceResponse())
    async with running_rig(pbx, app, tmp_path / "a", shared_settings) as rig:
        node_a = rig.adapter
        await rig.call(Caller(then="key", digit="#"))
        done = await app.next_request("/done")
        await finished(rig)
        sid = done.params["RecordingSid"]
        wav = shared / f"{sid}.wav"
        assert layout.media_file(node_a.config.media_dir, sid) == wav and wav.is_file()
        assert not (node_a.config.data_dir / "recordings").exists()  # nothing node-local

        b_data = tmp_path / "b" / "data"
        environ = node_environ(node_a.config, b_data)
        b_log = tmp_path / "b" / "adapter.log"
        process = start_node(environ, b_log)
        b_base = "http://" + environ["TWIML_ADAPTER_HTTP_LISTEN"]
        assert node_identity(b_data) != node_a.node_id
        url_path = urlsplit(done.params["RecordingUrl"]).path
        assert done.params["RecordingUrl"] == node_a.config.http.public_base_url + url_path

        async with aiohttp.ClientSession(headers=AUTH) as session:
            await wait_healthy(session, b_base, process, b_log)
            async with session.get(f"{b_base}{url_path}.wav") as got:
                assert got.status == 200, log_tail(b_log)
                assert got.content_type == "audio/x-wav"
                body = await got.read()
            assert body == wav.read_bytes()
            with wave.open(str(wav)) as reader:
                assert reader.getnframes() / reader.getframerate() >= rig.speech_seconds - 1
            async with session.get(f"{b_base}{url_path}.mp3") as got:
                assert got.status == 200 and got.content_type == "audio/mpeg"
                mp3 = await got.read()
            assert mp3[:3] == b"ID3" or mp3[0] == 0xFF
            assert (shared / f"{sid}.mp3").read_bytes() == mp3  # made by B, in the shared folder
            async with session.get(f"{node_a.config.http.public_base_url}{url_path}.mp3") as got:
                assert got.status == 200 and await got.read() == mp3  # A serves B's MP3
            assert not [p.name for p in shared.iterdir() if p.name.startswith(".")]  # no temp left

            client = Client(ACCOUNT_SID, AUTH_TOKEN)
            client.api.base_url = b_base
            assert await asyncio.to_thread(lambda: client.recordings(sid).delete()) is True
            assert not wav.exists() and not (shared / f"{sid}.mp3").exists()
            async with session.get(f"{node_a.config.http.public_base_url}{url_path}.wav") as got:
                assert got.status == 404
            async with session.get(f"{b_base}{url_path}.json") as got:
                assert got.status == 404
