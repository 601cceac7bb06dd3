"""The caller's keys during a `<Gather>`, as the PBX's DTMF events report them.

A `<Gather>` is one input from its start, but the PBX sees it as several commands (a prompt
played until a key, a wait for a key) with gaps between them: while the adapter fetches a
`<Play>` or synthesises a `<Say>`. Both PBXs drop a key that arrives in a gap (Asterisk while
the channel waits in AsyncAGI, FreeSWITCH while it is parked on the outbound socket), but both
report every key the caller presses as an event on the channel: Asterisk's ``DTMFEnd``
(``Direction: Received``), FreeSWITCH's ``DTMF``, before the completion of the command it ended.
So each driver feeds those events here (`heard`), and its key commands answer from here
(`key_from`, and `after_record` for a recording a key ended): the oldest key pressed since the
`<Gather>` began (`forget`) that no command has answered yet. A key pressed before the
`<Gather>` began does not count, as on Twilio.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Awaitable, Callable

from adapter.pbx.base import RecordEnd, RecordResult

__all__ = ["GATHER_KEYS", "HeardKeys"]

GATHER_KEYS = "0123456789*#"  # the keys that stop a <Gather> prompt, as both PBXs take them


class HeardKeys:
    """One call's keys since the current `<Gather>` began that no key command answered."""

    def __init__(self) -> None:
        self._keys: collections.deque[str] = collections.deque()
        # Keys a command answered before their event arrived: those events are not new keys.
        self._answered_early = 0

    def heard(self, key: str) -> None:
        """The PBX reported `key` (the caller pressed it)."""
        if self._answered_early:
            self._answered_early -= 1
            return
        self._keys.append(key)

    def forget(self) -> None:
        """A `<Gather>` begins: the keys pressed before it do not count."""
        self._keys.clear()

    def pending(self) -> str | None:
        """The oldest key not answered yet (pressed between two commands), or None."""
        return self._keys.popleft() if self._keys else None

    def after(self, ended_by: str | None) -> str | None:
        """A key command ended, by the key `ended_by` or none: the key it answers. That is
        the oldest one not answered yet: one pressed just before the command began comes
        before the key that ended it, which stays for the next command."""
        if self._keys:
            return self._keys.popleft()
        if ended_by is not None:
            self._answered_early += 1  # its event has not come yet
        return ended_by

    async def key_from(self, command: Callable[[], Awaitable[str | None]]) -> str | None:
        """A key command's answer: a key not answered yet at once (the command is not sent:
        the key came while the adapter prepared it), else `command`'s (`after`)."""
        key = self.pending()
        if key is not None:
            return key
        return self.after(await command())

    def after_record(self, result: RecordResult) -> RecordResult:
        """A `<Gather>` utterance's recording ended: one a key ended answers that key
        (`after`), so it is not answered again by the next command."""
        if result.end is not RecordEnd.FINISH_KEY:
            return result
        return dataclasses.replace(result, digit=self.after(result.digit))
