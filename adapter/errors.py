"""The adapter's exception tree.

Every error a user can see carries Twilio's numeric error code where Twilio has one, so that
logs and callbacks can be compared line by line with Twilio's debugger.
"""

from __future__ import annotations

__all__ = ["AdapterError", "ConfigError", "TwilioError"]


class AdapterError(Exception):
    """Base class of every error raised on purpose by the adapter."""


class ConfigError(AdapterError):
    """The configuration is invalid: `key` names the offending key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


class TwilioError(AdapterError):
    """An error Twilio documents with a numeric code (e.g. 11200, 12100, 13612)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
