"""The checked configuration: flat ``section.key`` values (file and environment merged) turned
into the typed sections of `adapter.config.sections`, with the defaults, or a `ConfigError`
naming the key and what is wrong with it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from ipaddress import ip_network
from pathlib import Path, PurePosixPath
from typing import Any, TypedDict
from urllib.parse import urlsplit

from adapter.callbacks.egress import PRIVATE_AND_LOOPBACK, IPNetwork
from adapter.config.environment import env_variable
from adapter.config.sections import (
    AsteriskConfig,
    Config,
    FreeSwitchConfig,
    HttpConfig,
    NumberRoute,
    TranscriptionConfig,
    WebhooksConfig,
)
from adapter.errors import ConfigError

__all__ = ["PBX_DEFAULTS", "build_config"]

# Per PBX section: the default spool folder, <Number> dial string and <Sip> dial string.
PBX_DEFAULTS: Mapping[str, tuple[str, str, str]] = {
    "asterisk": ("/var/spool/asterisk/twiml", "PJSIP/{number}@trunk", "PJSIP/trunk/{uri}"),
    "freeswitch": (
        "/var/spool/freeswitch/twiml", "sofia/gateway/trunk/{number}", "sofia/external/{uri}"
    ),
}
_NUMBER_KEYS = {"number", "voice_url", "voice_method"}


def build_config(values: Mapping[str, Any], numbers: Any) -> Config:
    """The `Config` for `values` and the ``[[numbers]]`` list. Raises ConfigError."""
    account_sid = _required(values, "account.sid")
    if not re.fullmatch(r"AC[0-9a-f]{32}", account_sid):
        raise ConfigError("account.sid", "must be AC followed by 32 lowercase hex digits")
    auth_token = _required(values, "account.auth_token")
    if len(auth_token) < 16:
        raise ConfigError("account.auth_token", "must be at least 16 characters")

    host, port_text = _host_port(values, "http.listen", "127.0.0.1:8080")
    default_base = f"http://{host}:{port_text}"
    public_base_url = _http_url(
        "http.public_base_url", values.get("http.public_base_url", default_base)
    ).rstrip("/")
    http = HttpConfig(host.strip("[]"), int(port_text), public_base_url,
                      bool(values.get("http.public_media", False)))

    data_dir = Path(values.get("storage.data_dir", "/var/lib/twiml-adapter"))
    if not data_dir.is_absolute():
        raise ConfigError("storage.data_dir", f"must be an absolute path, got {str(data_dir)!r}")
    database_url = values.get("storage.database_url") or f"sqlite+aiosqlite:///{data_dir}/adapter.db"
    if not re.match(r"(sqlite\+aiosqlite|postgresql\+asyncpg)://", database_url):
        raise ConfigError(
            "storage.database_url", "must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
        )

    pbx = values.get("pbx.type", "asterisk")
    if pbx not in ("asterisk", "freeswitch"):
        raise ConfigError("pbx.type", f"must be asterisk or freeswitch, got {pbx!r}")
    asterisk = _asterisk(values) if pbx == "asterisk" else None
    freeswitch = _freeswitch(values) if pbx == "freeswitch" else None

    level = values.get("log.level", "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("log.level", f"must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
    log_format = values.get("log.format", "text").lower()
    if log_format not in ("text", "json"):
        raise ConfigError("log.format", f"must be text or json, got {log_format!r}")

    return Config(
        account_sid=account_sid,
        auth_token=auth_token,
        http=http,
        data_dir=data_dir,
        database_url=database_url,
        pbx=pbx,
        asterisk=asterisk,
        freeswitch=freeswitch,
        numbers=_numbers(numbers),
        tts_voice=values.get("tts.voice", "en-us"),
        log_level=level,
        log_format=log_format,
        webhooks=_webhooks(values),
        transcription=_transcription(values),
    )


def _required(values: Mapping[str, Any], key: str) -> Any:
    if key not in values or values[key] in ("", None):
        section = key.split(".")[0]
        raise ConfigError(key, f"missing (set it in [{section}] or {env_variable(key)})")
    return values[key]


def _http_url(key: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(key, f"must be an http:// or https:// URL, got {value!r}")
    return value


def _host_port(values: Mapping[str, Any], key: str, default: str) -> tuple[str, str]:
    """A ``HOST:PORT`` listen address, both parts as written (an IPv6 host in brackets)."""
    listen = values.get(key, default)
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(key, f"must be HOST:PORT, got {listen!r}")
    return host, port_text


def _webhooks(values: Mapping[str, Any]) -> WebhooksConfig:
    return WebhooksConfig(
        allow_networks=_cidrs(values, "webhooks.allow_networks", PRIVATE_AND_LOOPBACK),
        deny_networks=_cidrs(values, "webhooks.deny_networks", ()),
    )


def _transcription(values: Mapping[str, Any]) -> TranscriptionConfig:
    """``[transcription]``: the engine and its settings (docs/transcription.md)."""
    engine = values.get("transcription.engine", "local")
    if engine not in ("local", "openai"):
        raise ConfigError("transcription.engine", f"must be local or openai, got {engine!r}")
    url = values.get("transcription.url", "")
    if engine == "openai":
        url = _http_url("transcription.url", _required(values, "transcription.url"))
    limits = {}
    for key, default, top in (("workers", 1, 16), ("cpu_threads", 1, 64), ("timeout", 60, 3600)):
        number = values.get(f"transcription.{key}", default)
        if not 1 <= number <= top:
            raise ConfigError(f"transcription.{key}", f"must be 1-{top}, got {number}")
        limits[key] = int(number)
    return TranscriptionConfig(
        engine=engine, model=values.get("transcription.model", ""), url=url.rstrip("/"),
        api_key=values.get("transcription.api_key", ""), workers=limits["workers"],
        cpu_threads=limits["cpu_threads"], timeout=float(limits["timeout"]),
    )


def _cidrs(
    values: Mapping[str, Any], key: str, default: tuple[IPNetwork, ...]
) -> tuple[IPNetwork, ...]:
    """A list of networks in CIDR form (a bare address is one host)."""
    if key not in values:
        return default
    out: list[IPNetwork] = []
    for item in values[key]:
        if not isinstance(item, str):
            raise ConfigError(key, f"must be a list of CIDR strings, got {item!r}")
        try:
            out.append(ip_network(item.strip()))
        except ValueError as exc:
            raise ConfigError(key, f"{item!r} is not a network in CIDR form ({exc})") from None
    return tuple(out)


class _Spool(TypedDict):
    """The spool fields of `adapter.config.sections.PbxConfig`."""

    spool_dir: PurePosixPath
    spool_dir_local: Path


class _DialStrings(TypedDict):
    """The dial-string fields of `adapter.config.sections.PbxConfig`."""

    dial_number: str
    dial_sip: str


def _spool(values: Mapping[str, Any], section: str) -> _Spool:
    """The shared spool folder of ``[asterisk]`` or ``[freeswitch]``: as the PBX sees it, and
    as the adapter does (the same unless ``spool_dir_local`` is set)."""
    spool_dir = values.get(f"{section}.spool_dir", PBX_DEFAULTS[section][0])
    if not spool_dir.startswith("/") or ".." in spool_dir.split("/"):
        raise ConfigError(f"{section}.spool_dir", f"must be an absolute path, got {spool_dir!r}")
    spool_local = values.get(f"{section}.spool_dir_local") or spool_dir
    if not spool_local.startswith("/"):
        raise ConfigError(
            f"{section}.spool_dir_local", f"must be an absolute path, got {spool_local!r}"
        )
    return _Spool(spool_dir=PurePosixPath(spool_dir), spool_dir_local=Path(spool_local))


def _dial_strings(values: Mapping[str, Any], section: str) -> _DialStrings:
    """The dial strings of ``[asterisk]`` or ``[freeswitch]``."""
    _, default_number, default_sip = PBX_DEFAULTS[section]
    return _DialStrings(
        dial_number=_dial_template(values, f"{section}.dial_number", default_number, "{number}"),
        dial_sip=_dial_template(values, f"{section}.dial_sip", default_sip, "{uri}"),
    )


def _port(values: Mapping[str, Any], key: str, default: int) -> int:
    port = values.get(key, default)
    if not 1 <= port <= 65535:
        raise ConfigError(key, f"must be 1-65535, got {port}")
    return int(port)


def _asterisk(values: Mapping[str, Any]) -> AsteriskConfig:
    spool = _spool(values, "asterisk")
    return AsteriskConfig(
        host=values.get("asterisk.host", "127.0.0.1"),
        port=_port(values, "asterisk.port", 5038),
        username=_required(values, "asterisk.username"),
        secret=_required(values, "asterisk.secret"),
        **spool,
        **_dial_strings(values, "asterisk"),
    )


def _freeswitch(values: Mapping[str, Any]) -> FreeSwitchConfig:
    host, port_text = _host_port(values, "freeswitch.listen", "127.0.0.1:8084")
    spool = _spool(values, "freeswitch")
    return FreeSwitchConfig(
        listen_host=host.strip("[]"),
        listen_port=int(port_text),
        esl_host=values.get("freeswitch.esl_host", "127.0.0.1"),
        esl_port=_port(values, "freeswitch.esl_port", 8021),
        esl_password=_required(values, "freeswitch.esl_password"),
        **spool,
        **_dial_strings(values, "freeswitch"),
    )


def _dial_template(values: Mapping[str, Any], key: str, default: str, placeholder: str) -> str:
    """A dial string with a placeholder: Asterisk ``PJSIP/{number}@trunk``, FreeSWITCH
    ``sofia/gateway/trunk/{number}``. No separators, variables or spaces."""
    template = str(values.get(key, default))
    if placeholder not in template or not re.fullmatch(r"[A-Za-z0-9_./@:{}+-]+", template):
        raise ConfigError(
            key, f"must be a Dial string containing {placeholder} (characters A-Za-z0-9_./@:+-)"
        )
    return template


def _numbers(numbers: Any) -> tuple[NumberRoute, ...]:
    if not isinstance(numbers, list) or not numbers:
        raise ConfigError("numbers", "needs at least one [[numbers]] entry (number, voice_url)")
    routes: list[NumberRoute] = []
    for index, entry in enumerate(numbers):
        key = f"numbers[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(key, "must be a table")
        unknown = set(entry) - _NUMBER_KEYS
        if unknown:
            raise ConfigError(f"{key}.{sorted(unknown)[0]}", "unknown key")
        number = entry.get("number")
        if not isinstance(number, str) or not re.fullmatch(r"\*|[+0-9*#]{1,32}", number):
            raise ConfigError(f"{key}.number", f"must be a dialled number or '*', got {number!r}")
        url = entry.get("voice_url")
        if not isinstance(url, str):
            raise ConfigError(f"{key}.voice_url", "missing")
        method = str(entry.get("voice_method", "POST")).upper()
        if method not in ("GET", "POST"):
            raise ConfigError(f"{key}.voice_method", f"must be GET or POST, got {method!r}")
        routes.append(NumberRoute(number, _http_url(f"{key}.voice_url", url), method))
    return tuple(routes)
