"""Reading the configuration: the TOML file, then the environment over it, then the checks.

Every key the file may hold is in `SCHEMA` with its type; an unknown section or key, or a value
of the wrong type, is a `ConfigError` naming it. Environment variables
(`adapter.config.environment`) win over the file. A file holding a secret (`SECRET_KEYS`) that
group or others may read or write gets one WARNING.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapter.config.building import build_config
from adapter.config.environment import NUMBERS_VARIABLE, env_value, env_variable
from adapter.config.sections import Config
from adapter.errors import ConfigError

__all__ = ["SCHEMA", "SECRET_KEYS", "load_config"]

log = logging.getLogger(__name__)

SCHEMA: Mapping[str, Mapping[str, type]] = {
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
    "log": {"level": str, "format": str},
    "transcription": {
        "engine": str, "model": str, "url": str, "api_key": str, "workers": int,
        "cpu_threads": int, "timeout": int,
    },
    "webhooks": {"allow_networks": list, "deny_networks": list},
}
SECRET_KEYS = ("account.auth_token", "asterisk.secret", "freeswitch.esl_password",
               "transcription.api_key")


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
    for section, keys in SCHEMA.items():
        for key, kind in keys.items():
            env_name = env_variable(f"{section}.{key}")
            if env_name in environ:
                values[f"{section}.{key}"] = env_value(env_name, environ[env_name], kind)
    numbers = raw.get("numbers", [])
    if NUMBERS_VARIABLE in environ:
        try:
            numbers = json.loads(environ[NUMBERS_VARIABLE])
        except json.JSONDecodeError as exc:
            raise ConfigError(NUMBERS_VARIABLE, f"not valid JSON ({exc})") from None
    config = build_config(values, numbers)
    if path is not None:  # only a valid configuration: a config error stays the one line
        _warn_if_exposed(path, raw)
    return config


def _check_known_keys(raw: Mapping[str, Any]) -> None:
    for section, table in raw.items():
        if section == "numbers":
            continue
        if section not in SCHEMA:
            raise ConfigError(section, "unknown section")
        if not isinstance(table, dict):
            raise ConfigError(section, "must be a table")
        for key, value in table.items():
            kind = SCHEMA[section].get(key)
            if kind is None:
                raise ConfigError(f"{section}.{key}", "unknown key")
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ConfigError(
                    f"{section}.{key}", f"must be {kind.__name__}, got {type(value).__name__}"
                )


def _flatten(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``{section: {key: value}}`` as ``{"section.key": value}`` (``[[numbers]]`` left out)."""
    return {
        f"{section}.{key}": value
        for section, table in raw.items()
        if section != "numbers"
        for key, value in table.items()
    }


def _warn_if_exposed(path: Path, raw: Mapping[str, Any]) -> None:
    """One WARNING if a file holding a secret is readable or writable by group or others."""
    held = [key for key in SECRET_KEYS
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
