"""`copy_wav_with_silence`: the silence a PBX cut from a `<Record>`, put back (do-not-trim)."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from adapter.recordings.media import MediaError
from adapter.recordings.padding import copy_wav_with_silence


def write_wav(path: Path, frames: bytes, *, width: int = 2, channels: int = 1,
              rate: int = 8000) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(frames)


def test_appends_exactly_the_seconds_of_zero_samples(tmp_path: Path) -> None:
    sound = bytes(range(256)) * 125  # 2 s of 16-bit mono at 8 kHz, not silent
    write_wav(tmp_path / "src.wav", sound)
    info = copy_wav_with_silence(tmp_path / "src.wav", tmp_path / "dst.wav", 2)
    assert (info.channels, info.sample_rate, info.sample_width, info.frames) == (1, 8000, 2,
                                                                                 4 * 8000)
    with wave.open(str(tmp_path / "dst.wav"), "rb") as wav:
        data = wav.readframes(wav.getnframes())
    assert data == sound + bytes(2 * 2 * 8000)
    assert list(tmp_path.glob(".*.tmp")) == []


def test_eight_bit_silence_is_0x80_and_zero_seconds_is_a_copy(tmp_path: Path) -> None:
    write_wav(tmp_path / "src.wav", b"\x10\xf0" * 800, width=1, channels=2)
    info = copy_wav_with_silence(tmp_path / "src.wav", tmp_path / "dst.wav", 1)
    assert info.frames == 800 + 8000
    with wave.open(str(tmp_path / "dst.wav"), "rb") as wav:
        assert wav.readframes(wav.getnframes())[1600:] == b"\x80" * 16000
    assert copy_wav_with_silence(tmp_path / "src.wav", tmp_path / "same.wav", 0).frames == 800


def test_refuses_its_source_a_negative_length_and_an_unfinished_file(tmp_path: Path) -> None:
    src = tmp_path / "src.wav"
    write_wav(src, bytes(1600))
    with pytest.raises(ValueError):
        copy_wav_with_silence(src, src, 1)
    with pytest.raises(ValueError):
        copy_wav_with_silence(src, tmp_path / "dst.wav", -1)
    unfinished = bytearray(src.read_bytes())
    unfinished[40:44] = bytes(4)  # data size 0, as while Asterisk still writes it
    src.write_bytes(bytes(unfinished))
    with pytest.raises(MediaError):
        copy_wav_with_silence(src, tmp_path / "dst.wav", 1)
    assert not (tmp_path / "dst.wav").exists()
