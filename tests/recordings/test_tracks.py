"""`adapter.recordings.tracks.interleave_wavs` (the dual-channel recording from two track files)
makes, for every sample width, the frames ``audioop.tostereo`` + ``add`` made before it, across
block edges and with the shorter track padded with silence."""

from __future__ import annotations

import audioop
import random
import wave
from pathlib import Path

import pytest
from wav_files import write_wav

from adapter.recordings import tracks


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_interleave_is_what_audioop_made(tmp_path: Path, width: int) -> None:
    rng = random.Random(width)
    rate = 8000
    left = rng.randbytes(width * (2 * rate + 123))  # crosses two one-second blocks
    right = rng.randbytes(width * (rate + 7))  # shorter: padded with silence
    padded = right + bytes(len(left) - len(right))
    expected = audioop.add(audioop.tostereo(left, width, 1, 0),
                           audioop.tostereo(padded, width, 0, 1), width)
    info = tracks.interleave_wavs(write_wav(tmp_path / "l.wav", left, width=width, rate=rate),
                                  write_wav(tmp_path / "r.wav", right, width=width, rate=rate),
                                  tmp_path / "dual.wav")
    assert (info.channels, info.sample_width, info.frames) == (2, width, len(left) // width)
    with wave.open(str(tmp_path / "dual.wav"), "rb") as r:
        assert r.readframes(r.getnframes()) == expected
