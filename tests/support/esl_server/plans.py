"""What a test scripts on the ESL test server: the caller during one ``record`` (`RecordPlan`,
with its `Key` presses; the real-FreeSWITCH lab plays the same plans), the record of an
application that ran (`AppRun`), and the callees of an ``originate`` (`Callee`,
`DEFAULT_CALLEES`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Key:
    """A DTMF digit `at` seconds after RECORD_START: ``recv`` = pressed by the caller (arrives
    on the channel's read side), ``send`` = sent outwards by the channel (lab notes §8.8)."""

    at: float
    digit: str
    direction: str = "recv"


@dataclass(frozen=True, slots=True)
class RecordPlan:
    """What the caller does during one ``record``: speaks for `talk_s` seconds, then is quiet
    (`media`: silent frames keep arriving; False: comfort noise only, which is not written),
    presses `keys`, hangs up at `hangup_at`."""

    talk_s: float = 1.0
    media: bool = True
    keys: tuple[Key, ...] = ()
    hangup_at: float | None = None


@dataclass(slots=True)
class AppRun:
    app: str
    arg: str
    event_uuid: str
    started: float
    ended: float | None = None
    response: str = "_none_"
    interrupted: str | None = None
    played_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Callee:
    """How an originated endpoint behaves (the callee of an ``originate``): it fails with
    `reject` after `fail_after` s; or answers after `answer_after` s (None: rings until the
    leg's timeout) and then "plays" `tone_hz` for `talk_s` s (None: until someone hangs up)."""

    answer_after: float | None = 1.0
    talk_s: float | None = 4.0
    tone_hz: float = 1000.0
    reject: str | None = None
    fail_after: float = 0.2


# Like the Asterisk lab's callees (tests/labs/asterisk_lab.py): 2000 answers and plays 1000 Hz for
# 4 s, 2001 is busy, 2002 never answers; and 2003 does not exist, 2004 talks until hung up,
# 2005 declines (SIP 603). Any other endpoint: NO_ROUTE_DESTINATION.
DEFAULT_CALLEES: dict[str, Callee] = {
    "2000": Callee(answer_after=1.0, talk_s=4.0),
    "2001": Callee(reject="USER_BUSY", fail_after=0.5),
    "2002": Callee(answer_after=None),
    "2003": Callee(reject="UNALLOCATED_NUMBER"),
    "2004": Callee(answer_after=0.5, talk_s=None),
    "2005": Callee(reject="CALL_REJECTED", fail_after=0.5),
}
UNKNOWN_CALLEE = Callee(reject="NO_ROUTE_DESTINATION", fail_after=0.0)


def callee_key(endpoint: str) -> str:
    """``sofia/gateway/trunk/2000`` → ``2000``; ``sofia/external/sip:2000@host`` → ``2000``."""
    tail = endpoint.rsplit("/", 1)[-1]
    if tail.startswith(("sip:", "sips:")):
        tail = tail.split(":", 1)[1].split("@", 1)[0]
    return tail
