"""Audio the adapter plays: `<Say>` text rendered offline, `<Play>` URLs downloaded.

Everything lands as 8 kHz mono 16-bit WAV in the shared spool (``<spool>/prompts``), where the
PBX can read it. Both are cached by content: a `<Say>` by (text, voice, language), a `<Play>` by
URL for `play_cache_seconds`.

TTS is espeak-ng (Debian package `espeak-ng`): Twilio's `language` picks the espeak voice
(``en-US`` → ``en-us``, ``fr-FR`` → ``fr``), and ``voice="woman"``/``alice`` a female variant.
Polly and Google voices have no offline equivalent here and use the language's default voice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import subprocess
import time
from pathlib import Path

import aiohttp
import yarl

from adapter.callbacks.egress import EgressPolicy, GuardedResolver, TargetRefused
from adapter.errors import TwilioError
from adapter.recordings.media import MediaError
from adapter.recordings.transcode import transcode_for_pbx

__all__ = ["PromptCache", "espeak_voice"]

log = logging.getLogger(__name__)

MAX_PLAY_BYTES = 64 * 1024 * 1024
_ESPEAK_LANGUAGES: frozenset[str] | None = None


def _espeak_languages() -> frozenset[str]:
    global _ESPEAK_LANGUAGES
    if _ESPEAK_LANGUAGES is None:
        out = subprocess.run(
            ["espeak-ng", "--voices"], capture_output=True, text=True, check=False
        ).stdout
        _ESPEAK_LANGUAGES = frozenset(
            line.split()[1].lower() for line in out.splitlines()[1:] if len(line.split()) > 1
        )
    return _ESPEAK_LANGUAGES


def espeak_voice(voice: str | None, language: str | None, default: str = "en-us") -> str:
    """The espeak-ng ``-v`` argument for Twilio's `voice` and `language` attributes."""
    known = _espeak_languages()
    wanted = (language or default).lower()
    base = wanted.split("-")[0]
    name = wanted if wanted in known else base if base in known else default
    if (voice or "").lower() in ("woman", "alice"):
        name += "+f3"
    return name


class PromptCache:
    def __init__(self, folder: Path, *, default_voice: str = "en-us",
                 play_cache_seconds: float = 300.0, egress: EgressPolicy | None = None) -> None:
        self.folder = folder
        self.default_voice = default_voice
        self.play_cache_seconds = play_cache_seconds
        self._locks: dict[str, asyncio.Lock] = {}
        self._play_fetched: dict[str, float] = {}
        self._session: aiohttp.ClientSession | None = None
        # <Play> URLs come from TwiML: the same network policy as webhooks (docs/security.md).
        self._egress = egress if egress is not None else EgressPolicy()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def say(self, text: str, *, voice: str | None, language: str | None) -> Path:
        """The WAV for a `<Say>`; rendered once per (text, voice, language)."""
        espeak = espeak_voice(voice, language, self.default_voice)
        key = hashlib.sha256(f"{espeak}\0{text}".encode()).hexdigest()[:32]
        target = self.folder / "say" / f"{key}.wav"
        async with self._lock(key):
            if target.exists():
                return target
            target.parent.mkdir(parents=True, exist_ok=True)
            raw = target.with_suffix(".espeak.wav")
            proc = await asyncio.create_subprocess_exec(
                "espeak-ng", "-v", espeak, "-w", str(raw), "--stdin",
                stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            _out, err = await proc.communicate(text.encode("utf-8"))
            if proc.returncode != 0:
                raise MediaError(f"espeak-ng failed: {err.decode(errors='replace').strip()}")
            try:
                await transcode_for_pbx(raw, target)
            finally:
                raw.unlink(missing_ok=True)
            return target

    async def play(self, url: str) -> Path:
        """The WAV for a `<Play>` URL. Raises TwilioError 11200 if it cannot be fetched or
        decoded (Twilio then logs a warning and goes on with the next verb)."""
        key = hashlib.sha256(url.encode()).hexdigest()[:32]
        target = self.folder / "play" / f"{key}.wav"
        async with self._lock(key):
            fetched = self._play_fetched.get(key)
            if fetched and target.exists() and time.monotonic() - fetched < self.play_cache_seconds:
                return target
            target.parent.mkdir(parents=True, exist_ok=True)
            download = target.with_suffix(".download")
            try:
                await self._download(url, download)
                await transcode_for_pbx(download, target)
            except MediaError as exc:
                raise TwilioError(11200, f"<Play> {url}: not playable audio ({exc})") from exc
            finally:
                download.unlink(missing_ok=True)
            self._play_fetched[key] = time.monotonic()
            return target

    async def _download(self, url: str, path: Path) -> None:
        if not url.startswith(("http://", "https://")):
            raise TwilioError(11200, f"<Play> {url}: only http and https URLs can be played")
        if self._session is None:
            resolver = GuardedResolver(self._egress, aiohttp.DefaultResolver())
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=60, sock_connect=5),
                connector=aiohttp.TCPConnector(resolver=resolver),
            )
        try:
            response = await self._get_checked(url)
            async with response:
                if response.status >= 400:
                    raise TwilioError(11200, f"<Play> {url}: HTTP {response.status}")
                size = 0
                with path.open("wb") as out:
                    async for chunk in response.content.iter_chunked(65536):
                        size += len(chunk)
                        if size > MAX_PLAY_BYTES:
                            raise TwilioError(11200, f"<Play> {url}: larger than 64 MiB")
                        out.write(chunk)
        except TargetRefused as exc:
            raise TwilioError(11210, f"<Play> {url}: {exc}") from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TwilioError(11200, f"<Play> {url}: {exc!r}") from exc

    async def _get_checked(self, url: str) -> aiohttp.ClientResponse:
        """GET following at most 5 redirects, each host checked against the egress policy
        first: the resolver only sees names, so an IP literal must be checked here."""
        assert self._session is not None
        for _hop in range(6):
            target = yarl.URL(url)
            if target.scheme not in ("http", "https"):
                raise TwilioError(11200, f"<Play> {url}: only http and https URLs can be played")
            self._egress.check_host(target.raw_host or "")
            response = await self._session.get(target, allow_redirects=False)
            location = response.headers.get("Location")
            if response.status not in (301, 302, 303, 307, 308) or not location:
                return response
            response.release()
            url = str(target.join(yarl.URL(location)))
        raise TwilioError(11215, f"<Play> {url}: too many redirects")


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None
