"""`<Dial>` on the real FreeSWITCH, as the driver tests (tests/pbx/freeswitch/) share it: lab.xml's
callees as the tests' adapter reaches them, a `DialRequest` builder, the leg uuids and endpoints
of a ``bridge`` application's data, and an event's FreeSWITCH timestamp."""

from __future__ import annotations

import re

from adapter.pbx.base import DialRequest
from adapter.pbx.freeswitch.protocol import EslEvent

# lab.xml's callees, as the tests' adapter reaches them (FreeSwitchStack.adapter_environ).
DIAL_NUMBER = "loopback/{number}/lab"
DIAL_SIP = "loopback/{uri}/lab"
_LEG_RE = re.compile(r"\[origination_uuid=([0-9a-f-]{36}),leg_timeout=\d+\]([^,]+)")


def dial(*numbers: str, timeout: int = 10, time_limit: int = 14400,
         caller_id: str | None = None) -> DialRequest:
    """A `<Dial>` of these numbers, with its timeout, time limit and caller id."""
    return DialRequest(targets=tuple(("number", n) for n in numbers), timeout=timeout,
                       time_limit=time_limit, caller_id=caller_id)


def bridge_leg_uuids(bridge_data: str) -> list[str]:
    """The leg uuids of a bridge application's data, one per endpoint, in order."""
    return [leg for leg, _endpoint in _LEG_RE.findall(bridge_data)]


def bridge_legs(bridge_data: str) -> dict[str, str]:
    """{endpoint: leg uuid} of a bridge application's data."""
    return {endpoint: leg for leg, endpoint in _LEG_RE.findall(bridge_data)}


def stamp(event: EslEvent) -> int:
    """When FreeSWITCH sent `event`, in microseconds of its clock."""
    return int(event.get("Event-Date-Timestamp"))
