"""Channels a previous run of the adapter left in AsyncAGI: hung up at start (see
`adapter.recovery`, step 1). A channel is named by its Uniqueid (`CallRow.pbx_channel`), which
Asterisk never gives to another channel, so a new call can never be hung up by mistake."""

from __future__ import annotations

import logging

from adapter.pbx.asterisk import mapping
from adapter.pbx.asterisk.ami import AmiClient
from adapter.pbx.base import ChannelGone
from adapter.recovery import HangUp

__all__ = ["asterisk_hang_up"]

log = logging.getLogger(__name__)


def asterisk_hang_up(ami: AmiClient) -> HangUp:
    """A `HangUp` for `adapter.recovery.recover`: AMI ``Hangup`` (cause 16, normal clearing)
    of the channel with that Uniqueid; True if it was still up."""

    async def hang_up(uniqueid: str) -> bool:
        try:
            await ami.action(mapping.hangup_channel(uniqueid))
        except ChannelGone:
            return False
        return True

    return hang_up
