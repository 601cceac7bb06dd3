"""The PBX's files of a recording → the final WAV it is published as, in this process (what
`adapter.recordings.finalise` runs in a thread or in its worker process). One assembler for the
live `<Record>`, the live `<Start><Recording>` and recovery after a crash alike.

A recording is one or more segments (`adapter.pbx.base.CallRecordingHandle`: more than one
after pauses with PauseBehavior=skip), each as the PBX wrote it:

- **track files** (Asterisk): one track as is; two tracks mixed for ``mono`` (1 channel), or
  interleaved for ``dual`` (2 channels) with the caller on channel 1;
- **one stereo file** (FreeSWITCH, caller on channel 1): ``dual`` is the file as it is,
  ``mono`` its two channels mixed, a single track its one channel. A stereo file that does not
  exist is a recording the PBX discarded without writing a frame (RECORD_DISCARDED): no audio.

The segments are joined in order, then the whole is trimmed (``trim-silence``) or copied, with
`pad` seconds of digital silence appended to a copy (``do-not-trim`` `<Record>`: the silence the
PBX cut, `adapter.recordings.padding`). One segment kept as it is and made from its files (tracks
combined, a channel taken) is written straight to the target. Empty or silent: no media, None.
The PBX's files are removed either way: the media folder holds the only copy.

This imports only the standard library and `adapter.recordings`' file modules (not
`adapter.pbx`, nor asyncio), so the worker process that runs it stays small.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from adapter.recordings import media, padding, silence, tracks

__all__ = ["Segment", "assemble"]


class Segment(Protocol):
    """What the assembler reads of a segment: the shape of
    `adapter.pbx.base.CallRecordingHandle` (whose docstring says what each field means)."""

    @property
    def inbound(self) -> bool: ...

    @property
    def outbound(self) -> bool: ...

    @property
    def inbound_file(self) -> Path | None: ...

    @property
    def outbound_file(self) -> Path | None: ...

    @property
    def stereo_file(self) -> Path | None: ...

    @property
    def files(self) -> tuple[Path, ...]: ...


def assemble(
    segments: Sequence[Segment], target: Path, channels: int, *, trim: bool,
    pad: int = 0,
) -> media.AudioInfo | None:
    """The final WAV at `target` made from `segments` (see the module docstring); its shape, or
    None when it holds no audio (then `target` does not exist).

    `channels` is the recording's (2: dual). Raises `MediaError` / `OSError` when a file is
    unusable or cannot be written; `target` does not exist then either. The PBX's files are
    removed in every case.
    """
    staged: list[Path] = []
    # One segment kept as it is: a file made from it (tracks combined, channels taken) is
    # written straight to `target`, not to a work file copied there afterwards.
    direct = len(segments) == 1 and not trim and not pad
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        parts = [part for index, segment in enumerate(segments)
                 if (part := _segment_audio(segment, channels, target, index, staged, direct))]
        if not parts:
            return None
        joined = parts[0]
        if len(parts) > 1:
            joined = _staged(target, "joined", staged)
            tracks.concat_wavs(parts, joined)
        if joined == target:
            info = media.wav_info(target)
        elif trim:
            info = silence.trim_silence(joined, target)
        elif pad:
            info = padding.copy_wav_with_silence(joined, target, pad)
        else:
            info = media.copy_wav(joined, target)
        if info.frames == 0 or silence.is_silent(target):
            target.unlink(missing_ok=True)
            return None
        return info
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    finally:
        for path in staged:
            path.unlink(missing_ok=True)
        for segment in segments:
            for path in segment.files:
                path.unlink(missing_ok=True)


def _staged(target: Path, name: str, staged: list[Path]) -> Path:
    """A work file beside `target`, removed when the assembler is done."""
    path = target.with_name(f".{target.stem}.{name}.staged.wav")
    staged.append(path)
    return path


def _segment_audio(
    segment: Segment, channels: int, target: Path, index: int, staged: list[Path],
    direct: bool,
) -> Path | None:
    """The WAV holding `segment`'s audio as the final recording wants it: a PBX file as it is,
    or a file made from it (`target` itself when `direct`, else a work file); None when the
    PBX wrote nothing for it (discarded)."""
    def work_file() -> Path:
        return target if direct else _staged(target, str(index), staged)

    if segment.stereo_file is not None:
        return _from_stereo(segment, segment.stereo_file, channels, work_file)
    inbound, outbound = segment.inbound_file, segment.outbound_file
    if inbound is not None and outbound is not None:
        part = work_file()
        combine = tracks.interleave_wavs if channels == 2 else tracks.mix_wavs
        combine(inbound, outbound, part)
        return part
    source = inbound or outbound
    if source is None:
        raise media.MediaError(f"{target.stem}: a segment without a file")
    return source


def _from_stereo(
    segment: Segment, stereo: Path, channels: int, work_file: Callable[[], Path]
) -> Path | None:
    if not stereo.exists():
        return None  # RECORD_DISCARDED: FreeSWITCH wrote no frame and removed the file
    tracks.check_stereo(stereo)
    if segment.inbound and segment.outbound:
        if channels == 2:
            return stereo
        part = work_file()
        tracks.mix_channels(stereo, part)
        return part
    if not (segment.inbound or segment.outbound):
        raise media.MediaError(f"{stereo}: no track wanted from the stereo recording")
    part = work_file()
    tracks.take_channel(stereo, part, 1 if segment.inbound else 2)
    return part

