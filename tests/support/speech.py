"""Test speech: fixed English sentences spoken by espeak-ng as 8 kHz telephone audio, and the
word error rate of a transcript against them (issue 12: at most 40 % on these sentences)."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

SENTENCES = (
    "I would like to cancel my appointment on Friday.",
    "Please call me back at your earliest convenience.",
    "My account number is not working since yesterday.",
    "The package arrived damaged and I want a refund.",
    "Can you send the invoice to my email address?",
)
MAX_WER = 0.40


def speak(text: str, wav: Path, *, lead_s: float = 0.5) -> float:
    """`text` spoken by espeak-ng (en-us) into `wav` (8 kHz mono 16-bit, `lead_s` of silence
    before it); returns its length in seconds."""
    wav.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "espeak.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(raw), text], check=True,
                       capture_output=True)
        subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(wav),
                        "pad", str(lead_s), "0"], check=True, capture_output=True)
    seconds = subprocess.run(["soxi", "-D", str(wav)], check=True, capture_output=True,
                             text=True).stdout
    return float(seconds)


def words(text: str) -> list[str]:
    """Lower-case words, punctuation dropped (numbers as written)."""
    return re.findall(r"[a-z0-9']+", text.lower())


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words (Levenshtein on words)."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)] / max(len(ref), 1)


def corpus_wer(pairs: list[tuple[str, str]]) -> float:
    """The WER over several (reference, hypothesis) pairs, weighted by reference length."""
    errors = sum(word_error_rate(r, h) * len(words(r)) for r, h in pairs)
    return errors / max(sum(len(words(r)) for r, _ in pairs), 1)
