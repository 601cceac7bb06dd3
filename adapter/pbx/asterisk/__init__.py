"""The Asterisk driver: AMI (panoramisk) with call control through AsyncAGI."""

from adapter.pbx.asterisk.driver import AsteriskDriver

__all__ = ["AsteriskDriver"]
