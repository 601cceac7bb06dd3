"""Twilio's connection overrides in the URL fragment: parsing, ranges, defaults, 11243; and how
twilio's own RequestValidator treats a fragment."""

from __future__ import annotations

import pytest
from twilio.request_validator import RequestValidator

from adapter.callbacks.connection_overrides import (
    DEFAULT_OVERRIDES,
    INVALID_RETRY_POLICY,
    ConnectionOverrides,
    Failure,
    OverrideError,
    failure_for_status,
    parse_fragment,
    parse_url,
)
from adapter.callbacks.signature import compute_signature

TOKEN = "0123456789abcdef0123456789abcdef"


def test_no_fragment_means_twilio_defaults() -> None:
    overrides = parse_fragment("")
    assert overrides == DEFAULT_OVERRIDES
    assert (overrides.connect_timeout_ms, overrides.read_timeout_ms,
            overrides.total_timeout_ms, overrides.retry_count) == (5000, 15000, 15000, 1)
    assert overrides.retry_policy == {"ct"}
    assert overrides.max_attempts == 2  # Twilio: "two 5-second attempts" to connect
    assert not overrides.total_timeout_set


def test_all_numeric_overrides() -> None:
    overrides = parse_fragment("ct=1000&rt=2500&tt=9000&rc=3&rp=4xx,5xx")
    assert (overrides.connect_timeout_ms, overrides.read_timeout_ms,
            overrides.total_timeout_ms, overrides.retry_count) == (1000, 2500, 9000, 3)
    assert overrides.retry_policy == {"4xx", "5xx"}
    assert overrides.total_timeout_set
    assert overrides.warnings == ()
    timeouts = overrides.request_timeouts()
    assert (timeouts.connect, timeouts.read, timeouts.total) == (1.0, 2.5, 9.0)


def test_leading_hash_and_last_occurrence_wins() -> None:
    assert parse_fragment("#rc=2&rc=4").retry_count == 4


@pytest.mark.parametrize(
    ("fragment", "field", "expected"),
    [
        ("ct=100", "connect_timeout_ms", 100),
        ("ct=10000", "connect_timeout_ms", 10000),
        ("rt=100", "read_timeout_ms", 100),
        ("rt=15000", "read_timeout_ms", 15000),
        ("tt=100", "total_timeout_ms", 100),
        ("tt=15000", "total_timeout_ms", 15000),
        ("rc=0", "retry_count", 0),
        ("rc=5", "retry_count", 5),
    ],
)
def test_range_limits_are_accepted(fragment: str, field: str, expected: int) -> None:
    overrides = parse_fragment(fragment)
    assert getattr(overrides, field) == expected
    assert overrides.warnings == ()


@pytest.mark.parametrize(
    ("fragment", "field", "expected"),
    [
        ("ct=99", "connect_timeout_ms", 100),
        ("ct=10001", "connect_timeout_ms", 10000),
        ("rt=20000", "read_timeout_ms", 15000),
        ("tt=50", "total_timeout_ms", 100),
        ("rc=6", "retry_count", 5),
        ("rc=-1", "retry_count", 0),
    ],
)
def test_out_of_range_is_clamped_with_a_warning(fragment: str, field: str, expected: int) -> None:
    overrides = parse_fragment(fragment)
    assert getattr(overrides, field) == expected
    (warning,) = overrides.warnings
    assert fragment.split("=")[0] in warning and "outside" in warning


def test_not_a_number_keeps_the_default_with_a_warning() -> None:
    overrides = parse_fragment("ct=fast&rc=2")
    assert overrides.connect_timeout_ms == 5000
    assert overrides.retry_count == 2
    assert len(overrides.warnings) == 1 and "'fast'" in overrides.warnings[0]


@pytest.mark.parametrize("rp", ["bogus", "", "5xx,bogus", "ALL", "4xx;5xx"])
def test_invalid_retry_policy_is_11243(rp: str) -> None:
    with pytest.raises(OverrideError) as caught:
        parse_fragment(f"rc=2&rp={rp}")
    assert caught.value.code == INVALID_RETRY_POLICY == 11243


def test_unknown_keys_and_non_pairs_are_ignored_with_warnings() -> None:
    overrides = parse_fragment("section-2&zz=1&e=dublin&sni=y&rc=0")
    assert overrides.retry_count == 0
    assert overrides.edge == "dublin" and overrides.sni == "y"
    assert len(overrides.warnings) == 2


@pytest.mark.parametrize(
    ("policy", "retried"),
    [
        ("ct", {Failure.CONNECT}),
        ("rt", {Failure.READ}),
        ("4xx", {Failure.HTTP_4XX}),
        ("5xx", {Failure.HTTP_5XX}),
        ("ct,5xx", {Failure.CONNECT, Failure.HTTP_5XX}),
        ("all", {Failure.CONNECT, Failure.READ, Failure.HTTP_4XX, Failure.HTTP_5XX}),
    ],
)
def test_retry_policy_decides_what_is_retried(policy: str, retried: set[Failure]) -> None:
    overrides = parse_fragment(f"rp={policy}")
    assert {f for f in Failure if overrides.retries_on(f)} == retried
    assert not overrides.retries_on(Failure.OTHER)


def test_failure_for_status() -> None:
    assert failure_for_status(404) is Failure.HTTP_4XX
    assert failure_for_status(503) is Failure.HTTP_5XX
    assert failure_for_status(200) is Failure.OTHER


def test_parse_url_splits_what_is_requested_from_the_overrides() -> None:
    base, overrides = parse_url("https://app.example/cb?x=1#rc=3&rp=all")
    assert base == "https://app.example/cb?x=1"
    assert overrides == ConnectionOverrides(retry_count=3, retry_policy=frozenset({"all"}))


def test_request_validator_signs_the_url_it_is_given_fragment_included() -> None:
    """Twilio's RequestValidator hashes the URI string it is handed, fragment and all; a web
    server never receives the fragment, so an app validates against the URL without it. We sign
    the URL as requested (fragment removed): exactly what an app can reconstruct."""
    validator = RequestValidator(TOKEN)
    params = {"RecordingSid": "RE" + "1" * 32, "RecordingStatus": "completed"}
    configured = "https://app.example/status?x=1#rc=2&rp=5xx"
    requested, _ = parse_url(configured)
    ours = compute_signature(TOKEN, requested, list(params.items()))
    assert validator.validate(requested, params, ours)
    assert not validator.validate(configured, params, ours)
    # A signature over the URL with its fragment would only validate against that string,
    # which the app never sees.
    with_fragment = compute_signature(TOKEN, configured, list(params.items()))
    assert not validator.validate(requested, params, with_fragment)
