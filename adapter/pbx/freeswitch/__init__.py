"""The FreeSWITCH driver: the outbound event socket for calls, greenswitch in a gevent thread."""

from adapter.pbx.freeswitch.driver import FreeSwitchCall, FreeSwitchDriver, FreeSwitchSettings

__all__ = ["FreeSwitchCall", "FreeSwitchDriver", "FreeSwitchSettings"]
