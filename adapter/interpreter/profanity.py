"""`<Gather profanityFilter>`: Twilio's default masking of profane words in ``SpeechResult``.

Twilio replaces all but the first letter of each filtered word with asterisks ("f***"). Its
list is not published; this one is a short list of common English profanities (and their
plural / -ing forms), matched as whole words in any letter case.
"""

from __future__ import annotations

import re

__all__ = ["PROFANE_WORDS", "mask_profanity"]

PROFANE_WORDS = frozenset({
    "arse", "arsehole", "ass", "asshole", "bastard", "bitch", "bollocks", "bullshit", "cock",
    "crap", "cunt", "damn", "dick", "fuck", "fucked", "fucker", "fucking", "goddamn",
    "motherfucker", "piss", "pissed", "prick", "shit", "shitty", "slut", "twat", "wanker",
    "whore",
})
_WORD_RE = re.compile(r"[A-Za-z']+")
_SUFFIXES = ("s", "es", "ing", "ed")


def _profane(word: str) -> bool:
    lower = word.lower().strip("'")
    if lower in PROFANE_WORDS:
        return True
    return any(lower.endswith(end) and lower[: -len(end)] in PROFANE_WORDS for end in _SUFFIXES)


def mask_profanity(text: str) -> str:
    """`text` with each profane word's letters after the first replaced by ``*``."""
    return _WORD_RE.sub(
        lambda m: m[0][0] + "*" * (len(m[0]) - 1) if _profane(m[0]) else m[0], text)
