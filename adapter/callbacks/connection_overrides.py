"""Twilio's webhook connection overrides: the ``#ct=..&rt=..&tt=..&rc=..&rp=..`` URL fragment.

Twilio reads per-URL connection settings from the fragment of a webhook URL (the fragment is
never sent to the server). Keys and values as Twilio documents them
(https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides):

====  =====================================================  ============  =========
key   meaning                                                range         default
====  =====================================================  ============  =========
ct    connect timeout (ms): establishing the TCP connection  100-10000     5000
rt    read timeout (ms): from sending the request to the     100-15000     15000
      first response packet, and between response packets
tt    total time (ms) for all attempts, retries included     100-15000     15000
rc    retry count: retries after the first attempt           0-5           1
rp    retry policy: which failures are retried, comma        4xx, 5xx,     ct
      separated                                              ct, rt, all
e     egress edge location                                   (Twilio's)    (ignored)
sni   Server Name Indication                                 y/n           (ignored)
====  =====================================================  ============  =========

The defaults are Twilio's own (error 11205's page: "two 5-second attempts" to connect, 15 s for
the whole exchange, i.e. ``rc=1``, ``rp=ct``, ``ct=5000``, ``tt=15000``).

Invalid values:

* ``rp`` with an unknown or empty policy: `OverrideError` with Twilio's code **11243** ("HTTP
  retry policy is invalid"); the request is not made.
* Numbers out of range are clamped into it, non-numbers keep the default; Twilio publishes no
  error code for these, so each becomes a warning (`ConnectionOverrides.warnings`), logged by
  the caller, and the request goes ahead.
* ``e`` and ``sni`` are accepted and have no effect (this adapter has a single egress; TLS
  always sends SNI); unknown keys and fragments that are not ``key=value`` pairs are ignored
  with a warning.

Pure functions only: nothing here does I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

from adapter.errors import TwilioError

__all__ = [
    "DEFAULT_OVERRIDES",
    "INVALID_RETRY_POLICY",
    "RETRY_POLICIES",
    "TOTAL_TIMEOUT_TRIGGERED",
    "ConnectionOverrides",
    "Failure",
    "OverrideError",
    "RequestTimeouts",
    "failure_for_status",
    "parse_fragment",
    "parse_url",
]

INVALID_RETRY_POLICY: Final = 11243  # "HTTP retry policy is invalid"
TOTAL_TIMEOUT_TRIGGERED: Final = 11203  # "HTTP communication total time out triggered"

RETRY_POLICIES: Final = frozenset({"4xx", "5xx", "ct", "rt", "all"})

# key -> (minimum, maximum, default)
_RANGES: Final[dict[str, tuple[int, int, int]]] = {
    "ct": (100, 10000, 5000),
    "rt": (100, 15000, 15000),
    "tt": (100, 15000, 15000),
    "rc": (0, 5, 1),
}
_IGNORED_KEYS: Final = frozenset({"e", "sni"})


class Failure(enum.Enum):
    """What an attempt failed with, in the words of the retry policy."""

    CONNECT = "ct"  # the connection could not be established (refused, reset, timed out, DNS)
    READ = "rt"  # connected, but no (complete) answer in time
    HTTP_4XX = "4xx"
    HTTP_5XX = "5xx"
    OTHER = "other"  # TLS, protocol violations, redirects: no policy retries these


class OverrideError(TwilioError):
    """The fragment holds an override Twilio would refuse (11243)."""


@dataclass(frozen=True, slots=True)
class RequestTimeouts:
    """Seconds, for an HTTP client: connect, between packets (read), whole exchange (total)."""

    connect: float
    read: float
    total: float


@dataclass(frozen=True, slots=True)
class ConnectionOverrides:
    """The connection settings of one webhook URL (Twilio's defaults unless overridden)."""

    connect_timeout_ms: int = 5000
    read_timeout_ms: int = 15000
    total_timeout_ms: int = 15000
    retry_count: int = 1
    retry_policy: frozenset[str] = frozenset({"ct"})
    # True when the fragment set ``tt`` itself: running out of it is then error 11203.
    total_timeout_set: bool = False
    edge: str | None = None
    sni: str | None = None
    warnings: tuple[str, ...] = field(default=())

    def retries_on(self, failure: Failure) -> bool:
        """Whether the retry policy retries an attempt that failed this way."""
        if failure is Failure.OTHER:
            return False
        return "all" in self.retry_policy or failure.value in self.retry_policy

    @property
    def max_attempts(self) -> int:
        """Requests Twilio makes at most: the first one and `retry_count` retries."""
        return 1 + self.retry_count

    @property
    def total_timeout(self) -> float:
        return self.total_timeout_ms / 1000

    def request_timeouts(self) -> RequestTimeouts:
        """The timeouts of one request, for the HTTP client (aiohttp: ``sock_connect``,
        ``sock_read``, ``total``)."""
        return RequestTimeouts(
            connect=self.connect_timeout_ms / 1000,
            read=self.read_timeout_ms / 1000,
            total=self.total_timeout_ms / 1000,
        )


DEFAULT_OVERRIDES: Final = ConnectionOverrides()


def failure_for_status(status: int) -> Failure:
    """The policy name of a non-2xx, non-redirect HTTP answer."""
    if 400 <= status < 500:
        return Failure.HTTP_4XX
    if 500 <= status < 600:
        return Failure.HTTP_5XX
    return Failure.OTHER


def _retry_policy(text: str) -> frozenset[str]:
    policies = [p.strip() for p in text.split(",")]
    bad = [p for p in policies if p not in RETRY_POLICIES]
    if not text.strip() or bad:
        shown = ", ".join(repr(p) for p in bad) if bad else "an empty value"
        raise OverrideError(
            INVALID_RETRY_POLICY,
            f"HTTP retry policy is invalid: rp={text!r} has {shown} "
            f"(valid: {', '.join(sorted(RETRY_POLICIES))}, comma separated)",
        )
    return frozenset(policies)


def _number(key: str, text: str, warnings: list[str]) -> int:
    low, high, default = _RANGES[key]
    try:
        value = int(text.strip())
    except ValueError:
        warnings.append(f"{key}={text!r} is not a whole number; the default {default} is used")
        return default
    if not low <= value <= high:
        clamped = min(max(value, low), high)
        warnings.append(f"{key}={value} is outside {low}-{high}; {clamped} is used")
        return clamped
    return value


def parse_fragment(fragment: str) -> ConnectionOverrides:
    """The overrides in a URL fragment (without the ``#``); Twilio's defaults for the rest.

    Raises OverrideError (11243) for an invalid ``rp``. Later occurrences of a key win.
    """
    fragment = fragment.removeprefix("#")
    if not fragment:
        return DEFAULT_OVERRIDES
    warnings: list[str] = []
    values: dict[str, str] = {}
    for pair in fragment.split("&"):
        if not pair:
            continue
        key, sep, value = pair.partition("=")
        if not sep:
            warnings.append(f"fragment part {pair!r} is not key=value; ignored")
            continue
        if key not in _RANGES and key != "rp" and key not in _IGNORED_KEYS:
            warnings.append(f"unknown connection override {key!r}; ignored")
            continue
        values[key] = value
    numbers = {key: _number(key, values[key], warnings) for key in _RANGES if key in values}
    return ConnectionOverrides(
        connect_timeout_ms=numbers.get("ct", _RANGES["ct"][2]),
        read_timeout_ms=numbers.get("rt", _RANGES["rt"][2]),
        total_timeout_ms=numbers.get("tt", _RANGES["tt"][2]),
        retry_count=numbers.get("rc", _RANGES["rc"][2]),
        retry_policy=_retry_policy(values["rp"]) if "rp" in values else frozenset({"ct"}),
        total_timeout_set="tt" in numbers,
        edge=values.get("e"),
        sni=values.get("sni"),
        warnings=tuple(warnings),
    )


def parse_url(url: str) -> tuple[str, ConnectionOverrides]:
    """`url` without its fragment (what is requested and signed) and the fragment's overrides.

    Raises OverrideError (11243) for an invalid ``rp``.
    """
    base, _, fragment = url.partition("#")
    return base, parse_fragment(fragment)
