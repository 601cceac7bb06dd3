"""A small server speaking OpenAI's ``POST /v1/audio/transcriptions`` (multipart ``file``,
``model``, ``language``, ``response_format``), backed by the real local Whisper engine, so
`OpenAiCompatibleEngine` is tested against the protocol, not a stub. `broken=True` answers 500;
`api_key` makes it require ``Authorization: Bearer <key>`` (401 otherwise)."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from adapter.transcription.local_whisper import LocalWhisperEngine


@dataclass
class TranscriptionServer:
    url: str
    requests: list[dict[str, str]] = field(default_factory=list)  # the form fields but file
    broken: bool = False


@asynccontextmanager
async def transcription_server(*, api_key: str = "", broken: bool = False
                               ) -> AsyncIterator[TranscriptionServer]:
    engine = LocalWhisperEngine()
    state = TranscriptionServer(url="", broken=broken)

    async def transcriptions(request: web.Request) -> web.Response:
        if api_key and request.headers.get("Authorization") != f"Bearer {api_key}":
            return web.json_response({"error": {"message": "bad key"}}, status=401)
        if state.broken:
            return web.json_response({"error": {"message": "model crashed"}}, status=500)
        fields: dict[str, str] = {}
        audio = b""
        async for part in await request.multipart():
            if part.name == "file":
                audio = await part.read()  # type: ignore[union-attr]
            else:
                fields[str(part.name)] = await part.text()  # type: ignore[union-attr]
        state.requests.append(fields)
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "upload.wav"
            wav.write_bytes(audio)
            result = await engine.transcribe(wav)
        return web.json_response({"text": result.text})

    app = web.Application(client_max_size=64 << 20)
    app.router.add_post("/v1/audio/transcriptions", transcriptions)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()
        await engine.close()
