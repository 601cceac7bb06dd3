"""The FreeSWITCH driver's settings: where its two event sockets are, its spool, its timeouts."""

from __future__ import annotations

from dataclasses import dataclass

from adapter.pbx.base import PathMap

__all__ = ["FreeSwitchSettings"]


@dataclass(frozen=True, slots=True)
class FreeSwitchSettings:
    """Where FreeSWITCH's outbound socket connects (`listen_*`: the dialplan's
    ``socket HOST:PORT``) and where its inbound event socket listens (`esl_*`)."""

    listen_host: str
    listen_port: int
    esl_host: str
    esl_port: int
    esl_password: str
    spool: PathMap
    connect_timeout: float = 10.0
    command_timeout: float = 10.0
    # After the adapter hangs up, how long FreeSWITCH may keep the socket open (linger) before
    # the adapter closes it.
    linger_grace: float = 10.0
    # <Dial> endpoints: a number, or a SIP URI, put into a bridge endpoint.
    dial_number: str = "sofia/gateway/trunk/{number}"
    dial_sip: str = "sofia/external/{uri}"
    # The inbound connection: back-off between reconnect attempts (first, and the cap), and
    # how long an api command waits for the connection to come back before it fails.
    reconnect_initial: float = 0.2
    reconnect_max: float = 10.0
    api_wait: float = 5.0
