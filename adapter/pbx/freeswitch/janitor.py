"""Channels a previous run of the adapter left up on FreeSWITCH: hung up at start (see
`adapter.recovery`, step 1).

When the adapter dies, FreeSWITCH does not end its calls at once: the application running on
the channel runs to its own end (a ``sleep``, a ``record`` up to its limit, a ``bridge`` until a
party hangs up), then ``socket`` returns and the dialplan goes on, which hangs up in
``dialplan/freeswitch/twiml.xml`` (docs/freeswitch.md, "When the adapter dies"). A channel still
up when the adapter is back is ended here: ``uuid_exists``, then ``uuid_kill … NORMAL_CLEARING``
on the inbound connection. A channel is named by its UUID (`CallRow.pbx_channel`, the
``Unique-ID`` of the call's outbound socket), which FreeSWITCH never gives to another channel,
so a new call can never be hung up by mistake.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from adapter.pbx.base import ChannelGone, PbxError
from adapter.pbx.freeswitch import mapping
from adapter.pbx.freeswitch.escape import UnsafeValue
from adapter.recovery import HangUp

__all__ = ["freeswitch_hang_up"]

log = logging.getLogger(__name__)

Api = Callable[[str], Awaitable[str]]


def freeswitch_hang_up(api: Api) -> HangUp:
    """A `HangUp` for `adapter.recovery.recover` over `api` (`FreeSwitchDriver.api`): True if
    the channel was still up and FreeSWITCH accepted the ``uuid_kill``; False if it was gone
    already (or went between the two commands). Other replies raise `PbxError`."""

    async def hang_up(uuid: str) -> bool:
        try:
            exists = mapping.uuid_exists(uuid)
            kill = mapping.uuid_kill(uuid, "NORMAL_CLEARING")
        except UnsafeValue:
            # Not a FreeSWITCH channel UUID (a row of another PBX): nothing of ours to end.
            log.warning("recovery: %r is not a FreeSWITCH channel UUID; not hung up", uuid)
            return False
        if (await api(exists)).strip() != "true":
            return False
        try:
            reply = (await api(kill)).strip()
        except ChannelGone:
            return False  # it hung up between uuid_exists and uuid_kill
        if reply.startswith("+OK"):
            return True
        raise PbxError(f"uuid_kill {uuid}: {reply}")

    return hang_up
