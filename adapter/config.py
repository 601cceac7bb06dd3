"""Configuration: one TOML file, every key also settable by an environment variable.

The variable for ``[section] key`` is ``TWIML_ADAPTER_<SECTION>_<KEY>`` (upper case), e.g.
``TWIML_ADAPTER_ASTERISK_SECRET``. The phone-number table is ``TWIML_ADAPTER_NUMBERS``, a JSON list
of tables with the same keys as ``[[numbers]]``. Environment variables win over the file; a list
(``webhooks.allow_networks``) is comma-separated there. See docs/configuration.md for every key.

A file holding a secret (``account.auth_token``, ``asterisk.secret``,
``freeswitch.esl_password``) that group or others may read or write gets one WARNING at load.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import ip_network
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from adapter.callbacks.egress import PRIVATE_AND_LOOPBACK, EgressPolicy, IPNetwork
from adapter.errors import ConfigError

__all__ = [
    "AsteriskConfig",
    "Config",
    "FreeSwitchConfig",
    "HttpConfig",
    "NumberRoute",
    "WebhooksConfig",
    "load_config",
]

log = logging.getLogger(__name__)

ENV_PREFIX = "TWIML_ADAPTER_"


@dataclass(frozen=True, slots=True)
class NumberRoute:
    """A phone number's Voice URL, as configured on a Twilio number. ``*`` matches any number."""

    number: str
    voice_url: str
    voice_method: str = "POST"


@dataclass(frozen=True, slots=True)
class HttpConfig:
    listen_host: str
    listen_port: int
    public_base_url: str
    public_media: bool


@dataclass(frozen=True, slots=True)
class AsteriskConfig:
    host: str
    port: int
    username: str
    secret: str = field(repr=False)
    spool_dir: PurePosixPath
    spool_dir_local: Path
    dial_number: str = "PJSIP/{number}@trunk"
    dial_sip: str = "PJSIP/trunk/{uri}"


@dataclass(frozen=True, slots=True)
class FreeSwitchConfig:
    listen_host: str
    listen_port: int
    esl_host: str
    esl_port: int
    esl_password: str = field(repr=False)
    spool_dir: PurePosixPath
    spool_dir_local: Path
    dial_number: str = "sofia/gateway/trunk/{number}"
    dial_sip: str = "sofia/external/{uri}"


@dataclass(frozen=True, slots=True)
class WebhooksConfig:
    """Which networks webhook and callback requests may reach (adapter/callbacks/egress.py)."""

    allow_networks: tuple[IPNetwork, ...] = PRIVATE_AND_LOOPBACK
    deny_networks: tuple[IPNetwork, ...] = ()

    def egress_policy(self) -> EgressPolicy:
        return EgressPolicy(allow=self.allow_networks, deny=self.deny_networks)


@dataclass(frozen=True, slots=True)
class Config:
    account_sid: str
    auth_token: str = field(repr=False)
    http: HttpConfig
    data_dir: Path
    database_url: str
    pbx: str  # "asterisk" | "freeswitch"
    asterisk: AsteriskConfig | None
    freeswitch: FreeSwitchConfig | None
    numbers: tuple[NumberRoute, ...]
    tts_voice: str
    log_level: str
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)

    @property
    def spool_dir_local(self) -> Path:
        """The shared spool of the configured PBX, as the adapter sees it."""
        pbx = self.asterisk if self.pbx == "asterisk" else self.freeswitch
        assert pbx is not None
        return pbx.spool_dir_local

    def route_for(self, to: str) -> NumberRoute | None:
        """The number's route, else the ``*`` route, else None."""
        for route in self.numbers:
            if route.number == to:
                return route
        for route in self.numbers:
            if route.number == "*":
                return route
        return None

    def recording_url(self, recording_sid: str) -> str:
        return (
            f"{self.http.public_base_url}/2010-04-01/Accounts/{self.account_sid}"
            f"/Recordings/{recording_sid}"
        )


# --- loading ------------------------------------------------------------------------------------

_SCHEMA: dict[str, dict[str, type]] = {
    "account": {"sid": str, "auth_token": str},
    "http": {"listen": str, "public_base_url": str, "public_media": bool},
    "storage": {"data_dir": str, "database_url": str},
    "asterisk": {
        "host": str, "port": int, "username": str, "secret": str,
        "spool_dir": str, "spool_dir_local": str, "dial_number": str, "dial_sip": str,
    },
    "pbx": {"type": str},
    "freeswitch": {
        "listen": str, "esl_host": str, "esl_port": int, "esl_password": str,
        "spool_dir": str, "spool_dir_local": str, "dial_number": str, "dial_sip": str,
    },
    "tts": {"voice": str},
    "log": {"level": str},
    "webhooks": {"allow_networks": list, "deny_networks": list},
}
_SECRET_KEYS = ("account.auth_token", "asterisk.secret", "freeswitch.esl_password")
_NUMBER_KEYS = {"number", "voice_url", "voice_method"}


def load_config(path: Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the file (if any), apply environment overrides, validate. Raises ConfigError."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(str(path), "file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(path), f"not valid TOML ({exc})") from None
    _check_known_keys(raw)
    values = _flatten(raw)
    for section, keys in _SCHEMA.items():
        for key, kind in keys.items():
            env_name = f"{ENV_PREFIX}{section.upper()}_{key.upper()}"
            if env_name in environ:
                values[f"{section}.{key}"] = _from_env(env_name, environ[env_name], kind)
    numbers = raw.get("numbers", [])
    if "TWIML_ADAPTER_NUMBERS" in environ:
        try:
            numbers = json.loads(environ["TWIML_ADAPTER_NUMBERS"])
        except json.JSONDecodeError as exc:
            raise ConfigError("TWIML_ADAPTER_NUMBERS", f"not valid JSON ({exc})") from None
    config = _build(values, numbers)
    if path is not None:  # only a valid configuration: a config error stays the one line
        _warn_if_exposed(path, raw)
    return config


def _check_known_keys(raw: Mapping[str, Any]) -> None:
    for section, table in raw.items():
        if section == "numbers":
            continue
        if section not in _SCHEMA:
            raise ConfigError(section, "unknown section")
        if not isinstance(table, dict):
            raise ConfigError(section, "must be a table")
        for key, value in table.items():
            kind = _SCHEMA[section].get(key)
            if kind is None:
                raise ConfigError(f"{section}.{key}", "unknown key")
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ConfigError(
                    f"{section}.{key}", f"must be {kind.__name__}, got {type(value).__name__}"
                )


def _flatten(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {
        f"{section}.{key}": value
        for section, table in raw.items()
        if section != "numbers"
        for key, value in table.items()
    }


def _warn_if_exposed(path: Path, raw: Mapping[str, Any]) -> None:
    """One WARNING if a file holding a secret is readable or writable by group or others."""
    held = [key for key in _SECRET_KEYS
            if isinstance(raw.get(key.split(".")[0]), dict)
            and key.split(".")[1] in raw[key.split(".")[0]]]
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    if held and mode & 0o066:
        log.warning(
            "%s holds %s but its mode is %04o (group/others may read or change it): "
            "chmod 600 it, or move the secrets to TWIML_ADAPTER_* environment variables",
            path, ", ".join(held), mode,
        )


def _from_env(name: str, text: str, kind: type) -> Any:
    if kind is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(name, f"must be true or false, got {text!r}")
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(name, f"must be an integer, got {text!r}") from None
    if kind is list:
        return [item.strip() for item in text.split(",") if item.strip()]
    return text


def _required(values: Mapping[str, Any], key: str) -> Any:
    if key not in values or values[key] in ("", None):
        section = key.split(".")[0]
        env_name = ENV_PREFIX + key.upper().replace(".", "_")
        raise ConfigError(key, f"missing (set it in [{section}] or {env_name})")
    return values[key]


def _http_url(key: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(key, f"must be an http:// or https:// URL, got {value!r}")
    return value


def _build(values: Mapping[str, Any], numbers: Any) -> Config:
    account_sid = _required(values, "account.sid")
    if not re.fullmatch(r"AC[0-9a-f]{32}", account_sid):
        raise ConfigError("account.sid", "must be AC followed by 32 lowercase hex digits")
    auth_token = _required(values, "account.auth_token")
    if len(auth_token) < 16:
        raise ConfigError("account.auth_token", "must be at least 16 characters")

    listen = values.get("http.listen", "127.0.0.1:8080")
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError("http.listen", f"must be HOST:PORT, got {listen!r}")
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
        webhooks=_webhooks(values),
    )


def _webhooks(values: Mapping[str, Any]) -> WebhooksConfig:
    return WebhooksConfig(
        allow_networks=_cidrs(values, "webhooks.allow_networks", PRIVATE_AND_LOOPBACK),
        deny_networks=_cidrs(values, "webhooks.deny_networks", ()),
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


def _spool(values: Mapping[str, Any], section: str, default: str
           ) -> tuple[PurePosixPath, Path]:
    spool_dir = values.get(f"{section}.spool_dir", default)
    if not spool_dir.startswith("/") or ".." in spool_dir.split("/"):
        raise ConfigError(f"{section}.spool_dir", f"must be an absolute path, got {spool_dir!r}")
    spool_local = values.get(f"{section}.spool_dir_local") or spool_dir
    if not spool_local.startswith("/"):
        raise ConfigError(
            f"{section}.spool_dir_local", f"must be an absolute path, got {spool_local!r}"
        )
    return PurePosixPath(spool_dir), Path(spool_local)


def _port(values: Mapping[str, Any], key: str, default: int) -> int:
    port = values.get(key, default)
    if not 1 <= port <= 65535:
        raise ConfigError(key, f"must be 1-65535, got {port}")
    return int(port)


def _asterisk(values: Mapping[str, Any]) -> AsteriskConfig:
    spool_dir, spool_local = _spool(values, "asterisk", "/var/spool/asterisk/twiml")
    return AsteriskConfig(
        host=values.get("asterisk.host", "127.0.0.1"),
        port=_port(values, "asterisk.port", 5038),
        username=_required(values, "asterisk.username"),
        secret=_required(values, "asterisk.secret"),
        spool_dir=spool_dir,
        spool_dir_local=spool_local,
        dial_number=_dial_template(values, "asterisk.dial_number", "PJSIP/{number}@trunk",
                                   "{number}"),
        dial_sip=_dial_template(values, "asterisk.dial_sip", "PJSIP/trunk/{uri}", "{uri}"),
    )


def _freeswitch(values: Mapping[str, Any]) -> FreeSwitchConfig:
    listen = values.get("freeswitch.listen", "127.0.0.1:8084")
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError("freeswitch.listen", f"must be HOST:PORT, got {listen!r}")
    spool_dir, spool_local = _spool(values, "freeswitch", "/var/spool/freeswitch/twiml")
    return FreeSwitchConfig(
        listen_host=host.strip("[]"),
        listen_port=int(port_text),
        esl_host=values.get("freeswitch.esl_host", "127.0.0.1"),
        esl_port=_port(values, "freeswitch.esl_port", 8021),
        esl_password=_required(values, "freeswitch.esl_password"),
        spool_dir=spool_dir,
        spool_dir_local=spool_local,
        dial_number=_dial_template(values, "freeswitch.dial_number",
                                   "sofia/gateway/trunk/{number}", "{number}"),
        dial_sip=_dial_template(values, "freeswitch.dial_sip", "sofia/external/{uri}", "{uri}"),
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
