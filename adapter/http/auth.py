"""HTTP Basic auth with the account SID and auth token, compared in constant time."""

from __future__ import annotations

import base64
import binascii
import hmac

from starlette.requests import Request

__all__ = ["authorized"]


def authorized(request: Request, account_sid: str, auth_token: str) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, sep, password = decoded.partition(":")
    if not sep:
        return False
    user_ok = hmac.compare_digest(user.encode(), account_sid.encode())
    password_ok = hmac.compare_digest(password.encode(), auth_token.encode())
    return user_ok and password_ok
