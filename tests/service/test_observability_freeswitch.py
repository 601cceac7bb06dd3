"""The FreeSWITCH driver's `connected` (``/health``'s ``pbx_connected`` and the
``twiml_adapter_pbx_connected`` gauge) follows its inbound event-socket connection on a real
FreeSWITCH: false while a TCP proxy (tests/support/tcp_proxy.py) keeps it cut, true once it
is back. The Asterisk counterpart, over HTTP: test_observability_asterisk.py."""

from __future__ import annotations

import asyncio

import pytest
from freeswitch_driver_rig import driver_rig
from freeswitch_lab import FreeSwitchStack
from tcp_proxy import TcpProxy

pytestmark = pytest.mark.freeswitch

FAST = {"reconnect_initial": 0.05, "reconnect_max": 0.4, "api_wait": 0.3}


async def test_connected_follows_the_event_socket(freeswitch_real: FreeSwitchStack) -> None:
    proxy = TcpProxy((freeswitch_real.esl_host, freeswitch_real.esl_port))
    await proxy.start()
    host, port = proxy.address
    try:
        async with driver_rig(freeswitch_real, esl_host=host, esl_port=port, **FAST) as rig:
            assert rig.driver.connected is True
            proxy.refuse(True)
            assert proxy.cut() == 1
            await asyncio.wait_for(rig.driver.inbound.wait_down(), 10)
            assert rig.driver.connected is False
            proxy.refuse(False)
            await asyncio.wait_for(rig.driver.inbound.wait_up(), 10)
            assert rig.driver.connected is True
    finally:
        await proxy.stop()
