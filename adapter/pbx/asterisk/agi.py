"""AGI replies: ``200 result=53 (dtmf) endpos=53291`` and friends, parsed with no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["AgiReply", "parse_agi_reply"]

_REPLY_RE = re.compile(
    r"(?P<code>\d{3})"
    r"(?: result=(?P<result>-?\d+))?"
    r"(?: \((?P<data>[^)]*)\))?"
    r"(?P<rest>.*)",
    re.DOTALL,
)
_KV_RE = re.compile(r"([A-Za-z_]+)=(\S*)")


@dataclass(frozen=True, slots=True)
class AgiReply:
    """One AGI command's reply. `result` is None when the reply has no ``result=``."""

    code: int
    result: int | None
    data: str
    extra: dict[str, str] = field(default_factory=dict)
    text: str = ""

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def hung_up(self) -> bool:
        return self.code == 511 or (self.result == -1 and self.data == "hangup")


def parse_agi_reply(text: str) -> AgiReply:
    """Parse the (already URL-decoded) ``Result`` of an ``AsyncAGIExec`` event."""
    line = text.strip()
    match = _REPLY_RE.fullmatch(line)
    if match is None:
        return AgiReply(code=0, result=None, data="", text=line)
    result = match.group("result")
    rest = match.group("rest") or ""
    return AgiReply(
        code=int(match.group("code")),
        result=int(result) if result is not None else None,
        data=match.group("data") or "",
        extra=dict(_KV_RE.findall(rest)),
        text=line,
    )
