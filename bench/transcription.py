"""Row 8: transcription, × real time and peak memory per engine, once `adapter.transcription`
exists (issue 12, another branch). Until then it reports that nothing was measured."""

from __future__ import annotations

import importlib.util

from bench.rows import Row


def run(quick: bool) -> list[Row]:
    if importlib.util.find_spec("adapter.transcription") is None:
        return [Row(measured="transcription, × real time and peak RSS per engine",
                    against="real time", figure="not measured: no engine", ratio=None,
                    target="", met=True,
                    note="adapter.transcription is not on this checkout (issue 12)")]
    raise NotImplementedError("adapter.transcription exists: write its benchmark here")
