"""The configured PBX's driver: the one place that knows which concrete drivers exist."""

from __future__ import annotations

from adapter.config import Config
from adapter.pbx.asterisk.driver import AsteriskDriver
from adapter.pbx.asterisk.settings import AsteriskSettings
from adapter.pbx.base import PathMap, PbxDriver
from adapter.pbx.freeswitch.driver import FreeSwitchDriver
from adapter.pbx.freeswitch.settings import FreeSwitchSettings

__all__ = ["make_driver"]


def make_driver(config: Config) -> PbxDriver:
    """The driver of `config`'s PBX (``[asterisk]`` or ``[freeswitch]``), not started yet."""
    if config.asterisk is not None:
        ast = config.asterisk
        return AsteriskDriver(AsteriskSettings(
            host=ast.host, port=ast.port, username=ast.username, secret=ast.secret,
            spool=PathMap(local=ast.spool_dir_local, pbx=ast.spool_dir),
            dial_number=ast.dial_number, dial_sip=ast.dial_sip,
        ))
    fs = config.freeswitch
    assert fs is not None
    return FreeSwitchDriver(FreeSwitchSettings(
        listen_host=fs.listen_host, listen_port=fs.listen_port, esl_host=fs.esl_host,
        esl_port=fs.esl_port, esl_password=fs.esl_password,
        spool=PathMap(local=fs.spool_dir_local, pbx=fs.spool_dir),
        dial_number=fs.dial_number, dial_sip=fs.dial_sip,
    ))
