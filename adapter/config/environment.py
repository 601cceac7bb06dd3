"""How a configuration key is spelled and read in the environment.

The variable for ``[section] key`` is ``TWIML_ADAPTER_<SECTION>_<KEY>`` (upper case), e.g.
``TWIML_ADAPTER_ASTERISK_SECRET``; the phone-number table is `NUMBERS_VARIABLE`. A boolean is
1/true/yes/on or 0/false/no/off, and a list is comma-separated.
"""

from __future__ import annotations

from typing import Any

from adapter.errors import ConfigError

__all__ = ["ENV_PREFIX", "NUMBERS_VARIABLE", "env_value", "env_variable"]

ENV_PREFIX = "TWIML_ADAPTER_"
NUMBERS_VARIABLE = "TWIML_ADAPTER_NUMBERS"  # a JSON list of tables with the keys of [[numbers]]


def env_variable(key: str) -> str:
    """The variable that sets `key` (``section.key``)."""
    return ENV_PREFIX + key.upper().replace(".", "_")


def env_value(name: str, text: str, kind: type) -> Any:
    """The value of the variable `name` as the key's type `kind` (str, int, bool or list)."""
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
