"""The one list of benchmark modules `python -m bench` runs, in order (issue #13's rows).

Each module exposes ``run(quick: bool) -> list[bench.rows.Row]``. A module listed here that is not
on this checkout (another branch adds it) is skipped with a note, so every branch runs alone.
"""

from __future__ import annotations

MODULES: tuple[str, ...] = (
    "bench.event_path",  # row 1: AMI / ESL events vs panoramisk / greenswitch parsing
    "bench.callback_latency",  # row 2
    "bench.delivery",  # row 3: signed callbacks through the outbox vs bare aiohttp
    "bench.memory_per_call",  # row 4
    "bench.real_pbx_load",  # row 5
    "bench.postprocess",  # row 6: trim + mp3, interleave vs ffmpeg alone
    "bench.twiml_rate",  # row 7: TwiML parsed + validated vs lxml's bare parse
    "bench.transcription",  # row 8
)

# The issue row each module reports (the section of docs/performance.md it fills).
ISSUE_ROW: dict[str, str] = {
    "bench.event_path": "1. Event path vs raw parsing",
    "bench.callback_latency": "2. Callback latency",
    "bench.delivery": "3. Delivery throughput",
    "bench.memory_per_call": "4. Memory per call",
    "bench.real_pbx_load": "5. Real PBX load",
    "bench.postprocess": "6. Post-processing",
    "bench.twiml_rate": "7. TwiML",
    "bench.transcription": "8. Transcription",
}
