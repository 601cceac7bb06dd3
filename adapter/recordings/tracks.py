"""A recording's tracks and segments combined: two mono tracks mixed or interleaved, one channel
(or a mix of both) taken from a 2-channel recording, segments joined one after the other.

Asterisk's MixMonitor writes one mono file per track (``r()``: audio from the caller, ``t()``:
audio to the caller); FreeSWITCH's ``uuid_record`` writes ONE 2-channel file, channel 1 what the
channel reads (the caller), channel 2 what it writes, sample-aligned by construction. Everything
streams one-second blocks and publishes its output atomically (`adapter.recordings.media`).
"""

from __future__ import annotations

import audioop
from collections.abc import Callable
from pathlib import Path

from adapter.recordings.media import (
    BLOCK_SECONDS,
    AudioInfo,
    MediaError,
    check_distinct,
    open_wav,
    read_frames,
    wav_info,
    wav_writer,
)

__all__ = [
    "check_stereo",
    "concat_wavs",
    "interleave_wavs",
    "mix_channels",
    "mix_wavs",
    "take_channel",
]


def _combine_tracks(
    first: Path, second: Path, dst: Path, channels: int,
    combine: Callable[[bytes, bytes, int], bytes],
) -> AudioInfo:
    """Two mono WAVs of one format, block by block (the shorter padded with silence), each
    pair of blocks turned into `dst`'s frames by `combine(a, b, sample_width)`."""
    check_distinct(first, dst)
    check_distinct(second, dst)
    with open_wav(first) as (freader, finfo), open_wav(second) as (sreader, sinfo):
        if (finfo.channels, sinfo.channels) != (1, 1) or (
            finfo.sample_rate, finfo.sample_width) != (sinfo.sample_rate, sinfo.sample_width):
            raise MediaError(f"{first} and {second} must be mono WAVs of one format")
        width = finfo.sample_width
        frames = max(finfo.frames, sinfo.frames)
        block = max(1, finfo.sample_rate * BLOCK_SECONDS)
        with wav_writer(dst, AudioInfo(channels, finfo.sample_rate, width, frames)) as writer:
            for pos in range(0, frames, block):
                count = min(block, frames - pos)
                pieces = []
                for reader, path, info in ((freader, first, finfo), (sreader, second, sinfo)):
                    have = max(0, min(count, info.frames - pos))
                    data = read_frames(reader, path, info, pos, have) if have else b""
                    pieces.append(data + b"\x00" * ((count - have) * width))
                writer.writeframesraw(combine(pieces[0], pieces[1], width))
    return wav_info(dst)


def _interleave(left: bytes, right: bytes, width: int) -> bytes:
    """Frames of two channels from two equally long mono blocks: each sample's bytes put in
    place by extended-slice copies (what ``audioop.tostereo`` twice and ``add`` made, at a
    quarter of their cost)."""
    out = bytearray(2 * len(left))
    step = 2 * width
    for byte in range(width):
        out[byte::step] = left[byte::width]
        out[width + byte::step] = right[byte::width]
    return bytes(out)


def interleave_wavs(left: Path, right: Path, dst: Path) -> AudioInfo:
    """Two mono WAVs of one format → one 2-channel WAV (`left` = channel 1), in one-second blocks.

    This is how a dual-channel call recording is made from MixMonitor's ``r()`` (audio from the
    caller) and ``t()`` (audio to the caller) files, which Asterisk keeps the same length. If one
    is shorter, it is padded with silence.
    """
    return _combine_tracks(left, right, dst, 2, _interleave)


def mix_wavs(first: Path, second: Path, dst: Path) -> AudioInfo:
    """Two mono WAVs of one format mixed (summed, clipped) into one mono WAV, in blocks."""
    return _combine_tracks(first, second, dst, 1, audioop.add)


def concat_wavs(sources: list[Path], dst: Path) -> AudioInfo:
    """WAVs of one format, one after the other, into `dst` (one-second blocks).

    How a recording paused with PauseBehavior=skip is put together from its segments.
    """
    if not sources:
        raise ValueError("nothing to concatenate")
    for src in sources:
        check_distinct(src, dst)
    infos = [wav_info(src) for src in sources]
    shape = infos[0]
    if any((i.channels, i.sample_rate, i.sample_width) !=
           (shape.channels, shape.sample_rate, shape.sample_width) for i in infos):
        raise MediaError("the segments differ in format")
    total = AudioInfo(shape.channels, shape.sample_rate, shape.sample_width,
                      sum(i.frames for i in infos))
    block = max(1, shape.sample_rate * BLOCK_SECONDS)
    with wav_writer(dst, total) as writer:
        for src in sources:
            with open_wav(src) as (reader, info):
                for pos in range(0, info.frames, block):
                    count = min(block, info.frames - pos)
                    writer.writeframesraw(read_frames(reader, src, info, pos, count))
    return wav_info(dst)


def check_stereo(path: Path) -> AudioInfo:
    """The shape of the 2-channel 16-bit WAV at `path` (what FreeSWITCH writes with
    ``RECORD_STEREO``); MediaError when it is not one, or not complete."""
    info = wav_info(path)
    if (info.channels, info.sample_width) != (2, 2):
        raise MediaError(f"{path}: {info.channels} channel(s) of {8 * info.sample_width} bits, "
                         "expected 2 of 16")
    return info


def _downmix(src: Path, dst: Path, left: float, right: float) -> AudioInfo:
    """The 2-channel 16-bit WAV `src` as one mono WAV: `left` x channel 1 + `right` x channel 2
    (clipped), in one-second blocks."""
    check_distinct(src, dst)
    check_stereo(src)
    with open_wav(src) as (reader, info):
        block = max(1, info.sample_rate * BLOCK_SECONDS)
        shape = AudioInfo(1, info.sample_rate, info.sample_width, info.frames)
        with wav_writer(dst, shape) as writer:
            for pos in range(0, info.frames, block):
                count = min(block, info.frames - pos)
                data = read_frames(reader, src, info, pos, count)
                writer.writeframesraw(audioop.tomono(data, info.sample_width, left, right))
    return wav_info(dst)


def take_channel(src: Path, dst: Path, channel: int) -> AudioInfo:
    """Channel `channel` (1 or 2) of the 2-channel WAV `src` as a mono WAV at `dst`."""
    if channel not in (1, 2):
        raise ValueError(f"channel must be 1 or 2, not {channel}")
    return _downmix(src, dst, 1.0 if channel == 1 else 0.0, 1.0 if channel == 2 else 0.0)


def mix_channels(src: Path, dst: Path) -> AudioInfo:
    """The two channels of the 2-channel WAV `src` mixed (summed, clipped) into a mono WAV:
    the same samples `mix_wavs` makes of the two channels as separate files."""
    return _downmix(src, dst, 1.0, 1.0)
