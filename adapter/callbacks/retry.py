"""The outbox's retry policy: what a failed attempt means, and when the next one is made.

An attempt that failed with something that can heal (connection failures, timeouts, 5xx, and
4xx when the URL's ``rp`` override asks for 4xx retries) is tried again after
``backoff[attempt - 1]`` (the last value repeating), up to `max_attempts` attempts. A 4xx answer
is otherwise final, as Twilio never retries a callback the app rejected; so are errors that
cannot heal by themselves (invalid URL, redirect loop or invalid redirect, invalid overrides).
A 2xx answer whose body is too large still counts as delivered: Twilio ignores the body of a
status callback answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from adapter.callbacks.connection_overrides import ConnectionOverrides, Failure, failure_for_status
from adapter.callbacks.webhook_results import (
    BAD_HOST_NAME,
    BODY_TOO_LARGE,
    CONNECTION_FAILURE,
    INVALID_REDIRECT,
    INVALID_URL,
    TOO_MANY_REDIRECTS,
    WebhookError,
)
from adapter.errors import TwilioError

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_MAX_ATTEMPTS",
    "UNEXPECTED_ERROR_CODE",
    "Outcome",
    "RetryPolicy",
    "outcome_of",
]

_FINAL_CODES: Final = frozenset({INVALID_URL, TOO_MANY_REDIRECTS, INVALID_REDIRECT})
# By default a callback is tried for about 19 hours (30 attempts; the delays below, then hourly)
# before it is given up: an app that is down overnight still gets every callback.
DEFAULT_BACKOFF: Final = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
                          3600.0)
DEFAULT_MAX_ATTEMPTS: Final = 30
# Last resort when no error carries a Twilio code (a bug rather than the network).
UNEXPECTED_ERROR_CODE: Final = 11200


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one delivery attempt (one or more requests) ended in."""

    delivered: bool
    final: bool = False
    code: int | None = None
    message: str | None = None
    failure: Failure = Failure.OTHER


def _failure_of(exc: WebhookError) -> Failure:
    if exc.status is not None:
        return failure_for_status(exc.status)
    if exc.code == CONNECTION_FAILURE:
        # WebhookClient words a response timeout "timed out waiting for the response"; every
        # other 11205 is about establishing the connection.
        return Failure.READ if "waiting for the response" in exc.message else Failure.CONNECT
    if exc.code == BAD_HOST_NAME:
        return Failure.CONNECT
    return Failure.OTHER


def outcome_of(exc: Exception) -> Outcome:
    """The `Outcome` of a request that raised `exc`."""
    if isinstance(exc, WebhookError):
        status = exc.status
        if exc.code == BODY_TOO_LARGE and status is not None and 200 <= status < 300:
            return Outcome(delivered=True)
        return Outcome(False, exc.code in _FINAL_CODES, exc.code, str(exc), _failure_of(exc))
    if isinstance(exc, TwilioError):
        return Outcome(False, False, exc.code, str(exc))
    return Outcome(False, False, UNEXPECTED_ERROR_CODE, f"{UNEXPECTED_ERROR_CODE}: {exc!r}")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often, and how long after each failure, a callback is tried again."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff: tuple[float, ...] = DEFAULT_BACKOFF

    @classmethod
    def of(cls, max_attempts: int, backoff: Sequence[float]) -> RetryPolicy:
        """The policy, checked: ValueError for no attempt or a missing or negative delay."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not backoff or any(b < 0 for b in backoff):
            raise ValueError("backoff needs at least one non-negative delay")
        return cls(max_attempts, tuple(float(b) for b in backoff))

    def gives_up(
        self, outcome: Outcome, overrides: ConnectionOverrides | None, attempt: int
    ) -> bool:
        """Whether a row whose attempt number `attempt` failed with `outcome` is failed for
        good (a final error, or its last attempt)."""
        if outcome.final or attempt >= self.max_attempts:
            return True
        if outcome.failure is Failure.HTTP_4XX:
            return overrides is None or not overrides.retries_on(Failure.HTTP_4XX)
        return False

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1 for the first)."""
        return self.backoff[min(attempt, len(self.backoff)) - 1]
