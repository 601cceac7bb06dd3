"""The audio file a `<Say>` or `<Play>` plays, and how many times: one home for both the verbs
on their own (`session`) and the prompts nested in `<Gather>` (`gather`)."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urljoin

from adapter import twiml
from adapter.errors import TwilioError
from adapter.interpreter.context import SessionContext

__all__ = ["LOOP_FOREVER", "prompt_file", "repeats"]

log = logging.getLogger(__name__)

LOOP_FOREVER = 1000  # Twilio: loop="0" repeats until the call ends; we stop after 1000 plays


def repeats(loop: int) -> int:
    """How many times a prompt with Twilio's `loop` attribute plays (0: until the call ends)."""
    return loop or LOOP_FOREVER


async def prompt_file(ctx: SessionContext, verb: twiml.Say | twiml.Play, url: str,
                      call_sid: str) -> Path | None:
    """The WAV to play for `verb` (a `<Play>` URL resolved against the document's `url`), or
    None when there is nothing to play: no text or URL, or a `<Play>` whose media cannot be
    fetched (Twilio logs a warning and goes on with the next verb)."""
    if isinstance(verb, twiml.Say):
        if not verb.text.strip():
            return None
        return await ctx.prompts.say(verb.text, voice=verb.voice, language=verb.language)
    if not verb.url:
        return None
    try:
        return await ctx.prompts.play(urljoin(url, verb.url))
    except TwilioError as exc:
        log.warning("call %s: warning %d: %s", call_sid, exc.code, exc.message)
        return None
