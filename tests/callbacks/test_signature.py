"""X-Twilio-Signature: our signatures must verify with Twilio's own RequestValidator."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from multidict import MultiDict
from twilio.request_validator import RequestValidator

from adapter.callbacks.signature import compute_signature, signing_string

TOKEN = "12345"
VALIDATOR = RequestValidator(TOKEN)

DOCS_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOCS_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}


def test_matches_the_example_in_twilio_docs() -> None:
    assert compute_signature(TOKEN, DOCS_URL, DOCS_PARAMS) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_post_params_verify_and_mapping_equals_pairs() -> None:
    sig = compute_signature(TOKEN, DOCS_URL, DOCS_PARAMS)
    assert VALIDATOR.validate(DOCS_URL, DOCS_PARAMS, sig)
    assert compute_signature(TOKEN, DOCS_URL, list(DOCS_PARAMS.items())[::-1]) == sig


def test_changed_value_url_or_token_does_not_verify() -> None:
    sig = compute_signature(TOKEN, DOCS_URL, DOCS_PARAMS)
    assert not VALIDATOR.validate(DOCS_URL, {**DOCS_PARAMS, "Digits": "1235"}, sig)
    assert not VALIDATOR.validate(DOCS_URL + "&x=1", DOCS_PARAMS, sig)
    assert not RequestValidator("54321").validate(DOCS_URL, DOCS_PARAMS, sig)


def test_get_signs_only_the_url_with_its_query() -> None:
    url = "https://example.com/voice?CallSid=CA123&From=%2B15551234567&Caller=J+Doe"
    sig = compute_signature(TOKEN, url, [])
    assert VALIDATOR.validate(url, {}, sig)
    assert not VALIDATOR.validate(url.replace("CA123", "CA124"), {}, sig)


def test_url_with_port_verifies() -> None:
    url = "https://example.com:8443/status?x=1"
    sig = compute_signature(TOKEN, url, DOCS_PARAMS)
    assert VALIDATOR.validate(url, DOCS_PARAMS, sig)
    # Twilio's validator also tries the URL with the default port added or removed.
    sig_default = compute_signature(TOKEN, "https://example.com/status", DOCS_PARAMS)
    assert VALIDATOR.validate("https://example.com:443/status", DOCS_PARAMS, sig_default)


def test_non_ascii_values_verify() -> None:
    params = {"CallerName": "Zoë Ångström", "SpeechResult": "こんにちは 👋", "From": "+4930"}
    url = "https://example.com/ä?q=%C3%A9"
    sig = compute_signature(TOKEN, url, params)
    assert VALIDATOR.validate(url, params, sig)


def test_repeated_names_verify_like_twilio_validators() -> None:
    pairs = [("Tag", "b"), ("Tag", "a"), ("Other", "x"), ("Tag", "b")]
    sig = compute_signature(TOKEN, DOCS_URL, pairs)
    assert VALIDATOR.validate(DOCS_URL, MultiDict(pairs), sig)
    # distinct values, sorted, after the names sort
    assert signing_string("U", pairs) == "UOtherxTagaTagb"


def test_names_sort_case_sensitively() -> None:
    assert signing_string("U", {"a": "1", "B": "2", "_": "3"}) == "UB2_3a1"


@given(
    st.dictionaries(st.text(min_size=1, max_size=12), st.text(max_size=30), max_size=8),
    st.sampled_from(["http://h.test/x", "https://h.test:444/a/b?c=d", "https://h.test/"]),
)
def test_any_params_verify(params: dict[str, str], url: str) -> None:
    assert VALIDATOR.validate(url, params, compute_signature(TOKEN, url, params))
