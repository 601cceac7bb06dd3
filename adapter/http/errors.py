"""Twilio's REST error body: ``{"code", "message", "more_info", "status"}``, and `ApiError`,
raised by a REST handler to answer with it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = ["ApiError", "bad_request", "not_found", "twilio_error"]


def twilio_error(status: int, code: int, message: str) -> JSONResponse:
    """The error response: HTTP `status`, Twilio's error `code` and `message`."""
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else None
    return JSONResponse(
        {"code": code, "message": message,
         "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
        status_code=status,
        headers=headers,
    )


class ApiError(Exception):
    """A request the API refuses: answered with Twilio's error body (`response`)."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> JSONResponse:
        return twilio_error(self.status, self.code, self.message)


def not_found(request: Request) -> ApiError:
    """Twilio's 20404 for the requested path."""
    return ApiError(404, 20404, f"The requested resource {request.url.path} was not found")


def bad_request(message: str, code: int = 20001) -> ApiError:
    """A 400 answer; `code` 20001 (invalid parameter) unless Twilio has a more precise one."""
    return ApiError(400, code, message)
