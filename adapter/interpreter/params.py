"""The parameters Twilio sends with every request, and with recording callbacks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

__all__ = ["API_VERSION", "CallInfo", "rfc2822"]

API_VERSION = "2010-04-01"

Params = list[tuple[str, str]]


@dataclass(slots=True)
class CallInfo:
    """The call as Twilio describes it in webhooks. `status` changes as the call goes on."""

    account_sid: str
    call_sid: str
    from_: str
    to: str
    caller_name: str
    direction: str = "inbound"
    status: str = "ringing"

    def request_params(self) -> Params:
        """Twilio's standard request parameters for a voice webhook."""
        return [
            ("AccountSid", self.account_sid),
            ("ApiVersion", API_VERSION),
            ("CallSid", self.call_sid),
            ("CallStatus", self.status),
            ("Called", self.to),
            ("Caller", self.from_),
            ("CallerName", self.caller_name),
            ("Direction", self.direction),
            ("From", self.from_),
            ("To", self.to),
        ]


def rfc2822(moment: datetime) -> str:
    """Twilio's date format in callbacks: ``Mon, 22 Aug 2022 21:35:15 +0000``."""
    return format_datetime(moment, usegmt=False)
