"""Twilio's REST error body: ``{"code", "message", "more_info", "status"}``."""

from __future__ import annotations

from starlette.responses import JSONResponse

__all__ = ["twilio_error"]


def twilio_error(status: int, code: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else None
    return JSONResponse(
        {"code": code, "message": message,
         "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
        status_code=status,
        headers=headers,
    )
