"""The FreeSWITCH driver: the outbound event socket for calls, greenswitch in a gevent thread."""

from adapter.pbx.freeswitch.call import FreeSwitchCall
from adapter.pbx.freeswitch.driver import FreeSwitchDriver
from adapter.pbx.freeswitch.settings import FreeSwitchSettings

__all__ = ["FreeSwitchCall", "FreeSwitchDriver", "FreeSwitchSettings"]
