"""What a webhook request ends in: a `WebhookResponse` (2xx), or a `WebhookError` carrying the
code Twilio's debugger would show:

==========  ====================================================================================
11100       Invalid URL format (not an absolute http/https URL)
11200       HTTP retrieval failure (non-2xx answer; ``status`` holds it; any other failure)
11205       HTTP connection failure (connection refused/reset, connect or response timeout)
11206       HTTP protocol violation (the answer is not valid HTTP)
11210       HTTP bad host name (DNS lookup failed, or the host is refused by the egress policy)
11215       HTTP too many redirects
11216       HTTP invalid redirect (3xx other than 301/302/303/307, or no usable Location)
11220       SSL/TLS handshake error
11235/6/7   Certificate invalid: domain mismatch / expired / could not find path to certificate
11750       Response body too large (more than `max_body` bytes; Twilio's TwiML limit is 64 kB)
==========  ====================================================================================

`error_for` translates an aiohttp/asyncio failure into its WebhookError.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import aiohttp

from adapter.callbacks.egress import TargetRefused
from adapter.errors import TwilioError

__all__ = [
    "BAD_HOST_NAME",
    "BODY_TOO_LARGE",
    "CERT_DOMAIN_MISMATCH",
    "CERT_EXPIRED",
    "CERT_UNTRUSTED",
    "CONNECTION_FAILURE",
    "INVALID_REDIRECT",
    "INVALID_URL",
    "PROTOCOL_VIOLATION",
    "RETRIEVAL_FAILURE",
    "TLS_HANDSHAKE",
    "TOO_MANY_REDIRECTS",
    "WebhookError",
    "WebhookResponse",
    "error_for",
]

INVALID_URL = 11100
RETRIEVAL_FAILURE = 11200
CONNECTION_FAILURE = 11205
PROTOCOL_VIOLATION = 11206
BAD_HOST_NAME = 11210
TOO_MANY_REDIRECTS = 11215
INVALID_REDIRECT = 11216
TLS_HANDSHAKE = 11220
CERT_DOMAIN_MISMATCH = 11235
CERT_EXPIRED = 11236
CERT_UNTRUSTED = 11237
BODY_TOO_LARGE = 11750

# OpenSSL X509_V_ERR_* codes seen in ssl.SSLCertVerificationError.verify_code.
_X509_CERT_HAS_EXPIRED = 10
_X509_HOSTNAME_MISMATCH = 62
_X509_IP_ADDRESS_MISMATCH = 64


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    """A 2xx answer. `content_type` is the raw header (parameters included) or None;
    `url` is the URL that finally answered (after redirects, without fragment)."""

    status: int
    content_type: str | None
    body: bytes
    url: str


class WebhookError(TwilioError):
    """A webhook request failed. `status` is the HTTP status when the server answered."""

    def __init__(
        self, code: int, message: str, *, url: str, status: int | None = None
    ) -> None:
        super().__init__(code, message)
        self.url = url
        self.status = status


def _code_for_certificate(exc: ssl.SSLCertVerificationError) -> int:
    if exc.verify_code == _X509_CERT_HAS_EXPIRED:
        return CERT_EXPIRED
    if exc.verify_code in (_X509_HOSTNAME_MISMATCH, _X509_IP_ADDRESS_MISMATCH):
        return CERT_DOMAIN_MISMATCH
    return CERT_UNTRUSTED


def error_for(exc: Exception, url: str) -> WebhookError:
    """Translate an aiohttp/asyncio failure into the WebhookError Twilio would report."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError) and isinstance(
        exc.os_error, TargetRefused
    ):
        return WebhookError(BAD_HOST_NAME, str(exc.os_error), url=url)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert_error = exc.certificate_error
        if isinstance(cert_error, ssl.SSLCertVerificationError):
            code = _code_for_certificate(cert_error)
        else:
            code = CERT_UNTRUSTED
        return WebhookError(code, f"certificate invalid: {cert_error}", url=url)
    if isinstance(exc, aiohttp.ClientSSLError):
        return WebhookError(TLS_HANDSHAKE, f"SSL/TLS handshake error: {exc}", url=url)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return WebhookError(BAD_HOST_NAME, f"bad host name: {exc}", url=url)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return WebhookError(CONNECTION_FAILURE, "timed out connecting", url=url)
    if isinstance(exc, TimeoutError):  # SocketTimeoutError, ServerTimeoutError, total timeout
        return WebhookError(CONNECTION_FAILURE, "timed out waiting for the response", url=url)
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ClientConnectionResetError):
        return WebhookError(CONNECTION_FAILURE, f"connection failure: {exc}", url=url)
    if isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientPayloadError):
        return WebhookError(PROTOCOL_VIOLATION, f"HTTP protocol violation: {exc}", url=url)
    return WebhookError(RETRIEVAL_FAILURE, f"HTTP retrieval failure: {exc!r}", url=url)
