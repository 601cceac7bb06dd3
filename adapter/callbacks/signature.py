"""Twilio's ``X-Twilio-Signature`` request signature.

Twilio signs every webhook it sends: the signing string is the full URL of the request followed,
for a form POST, by every parameter's name and value concatenated with no delimiters, parameters
sorted by name. The signature is ``base64(HMAC-SHA1(auth_token, signing_string))``.

For a GET request the parameters travel in the URL's query string, so only the URL is signed
(``params`` is empty).

Repeated names: Twilio's own validators (``twilio.request_validator`` in twilio-python and
``webhooks.js`` in twilio-node) sort the *distinct* values of a repeated name and append
``name + value`` for each one. We build the string the same way, so every official validator
accepts what we send.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence

__all__ = ["SIGNATURE_HEADER", "compute_signature", "signing_string"]

SIGNATURE_HEADER = "X-Twilio-Signature"

Params = Mapping[str, str] | Sequence[tuple[str, str]]


def _pairs(params: Params) -> list[tuple[str, str]]:
    if isinstance(params, Mapping):
        return [(str(k), str(v)) for k, v in params.items()]
    return [(str(k), str(v)) for k, v in params]


def signing_string(url: str, params: Params) -> str:
    """The exact string Twilio feeds to HMAC-SHA1 for `url` and the POST `params`.

    Names sort in code-point order (Unix-style, case-sensitive: ``"B" < "a"``); for a repeated
    name its distinct values sort the same way.
    """
    values_by_name: dict[str, set[str]] = {}
    for name, value in _pairs(params):
        values_by_name.setdefault(name, set()).add(value)
    parts = [url]
    for name in sorted(values_by_name):
        for value in sorted(values_by_name[name]):
            parts.append(name)
            parts.append(value)
    return "".join(parts)


def compute_signature(auth_token: str, url: str, params: Params) -> str:
    """The ``X-Twilio-Signature`` value for a request to `url` carrying the form `params`.

    `url` must be the URL exactly as it is requested (query string included, fragment removed);
    for a GET pass the final URL and no params.
    """
    mac = hmac.new(
        auth_token.encode("utf-8"),
        signing_string(url, params).encode("utf-8"),
        hashlib.sha1,
    )
    return base64.b64encode(mac.digest()).decode("ascii")
