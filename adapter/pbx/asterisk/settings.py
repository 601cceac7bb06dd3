"""The Asterisk driver's settings: its AMI login, its spool and its Dial templates."""

from __future__ import annotations

from dataclasses import dataclass

from adapter.pbx.base import PathMap

__all__ = ["AsteriskSettings"]


@dataclass(frozen=True, slots=True)
class AsteriskSettings:
    host: str
    port: int
    username: str
    secret: str
    spool: PathMap
    dial_number: str = "PJSIP/{number}@trunk"
    dial_sip: str = "PJSIP/trunk/{uri}"
    connect_timeout: float = 10.0
