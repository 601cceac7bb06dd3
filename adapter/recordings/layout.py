"""Where a recording's files are: the one home of every spool and media path.

The **spool** is the folder the PBX writes into (`Config.spool_dir_local`, as the adapter sees
it; the drivers map it to the PBX's own view). Each call gets a folder of its own::

    <spool>/recordings/<CallSid>/<RecordingSid>.wav            a <Record>
    <spool>/recordings/<CallSid>/<key>-inbound.wav             a call recording's track files
    <spool>/recordings/<CallSid>/<key>-outbound.wav              (Asterisk's MixMonitor)
    <spool>/recordings/<CallSid>/<key>-stereo.wav              its one stereo file (FreeSWITCH)
    <spool>/recordings/<CallSid>/utterance-<n>.wav             a <Gather> speech utterance
                                                                 (deleted once transcribed)

where a call recording's `key` is its RecordingSid for the first segment and ``<sid>s1``,
``<sid>s2``... for the segments after a pause with PauseBehavior=skip (`segment_key`).

The **media** a recording is published as lives in the media folder (`Config.media_dir`,
``storage.media_dir``; by default `default_media_dir`, ``<data>/recordings``)::

    <media>/<RecordingSid>.wav   (and .mp3, made on the first request for it)

Its path depends on nothing but the folder and the RecordingSid, so any node that mounts the same
media folder serves, and deletes, a recording another node made (docs/scaling.md). Every file is
written to a temporary name in the same folder and renamed into place
(`adapter.recordings.media.atomic_file`): a reader on any node sees the whole file or none.

Audio the PBX plays (``<Say>`` renderings, ``<Play>`` downloads) is cached in
``<spool>/prompts`` (`prompts_dir`).

The live call (interpreter, drivers) and recovery after a crash use these functions alike,
so recovery finds exactly the files the live call would have used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

__all__ = [
    "Track",
    "call_spool",
    "default_media_dir",
    "media_file",
    "mp3_file",
    "prompts_dir",
    "record_verb_file",
    "segment_key",
    "segment_keys",
    "spool_recordings",
    "stereo_file",
    "track_file",
    "utterance_file",
]

Track = Literal["inbound", "outbound"]

_FOLDER = "recordings"


def spool_recordings(spool_dir: Path) -> Path:
    """The recordings folder of the spool `spool_dir` (the writability check's target)."""
    return spool_dir / _FOLDER


def call_spool(spool_dir: Path, call_sid: str) -> Path:
    """The folder the PBX writes call `call_sid`'s recordings into."""
    return spool_recordings(spool_dir) / call_sid


def record_verb_file(spool_dir: Path, call_sid: str, recording_sid: str) -> Path:
    """The file the PBX writes a `<Record>` into."""
    return call_spool(spool_dir, call_sid) / f"{recording_sid}.wav"


def utterance_file(spool_dir: Path, call_sid: str, key: str) -> Path:
    """The file the PBX records a `<Gather input="speech">` utterance into (deleted once it is
    transcribed); `key` tells the gathers of a call apart."""
    return call_spool(spool_dir, call_sid) / f"utterance-{key}.wav"


def segment_key(recording_sid: str, index: int) -> str:
    """The name of segment `index` (0: the first) of a call recording: its SID, then
    ``<sid>s1``, ``<sid>s2``... after each pause with PauseBehavior=skip."""
    return recording_sid if index == 0 else f"{recording_sid}s{index}"


def segment_keys(recording_sid: str) -> Iterator[str]:
    """Every segment name of a call recording, in order (endless: stop at the first missing)."""
    index = 0
    while True:
        yield segment_key(recording_sid, index)
        index += 1


def track_file(directory: Path, key: str, track: Track) -> Path:
    """The mono file of one track of segment `key` (Asterisk's MixMonitor ``r()`` / ``t()``)."""
    return directory / f"{key}-{track}.wav"


def stereo_file(directory: Path, key: str) -> Path:
    """The one 2-channel file of segment `key` (FreeSWITCH's ``uuid_record``)."""
    return directory / f"{key}-stereo.wav"


def default_media_dir(data_dir: Path) -> Path:
    """The folder of the published recordings when ``storage.media_dir`` is not set."""
    return data_dir / _FOLDER


def media_file(media_dir: Path, recording_sid: str) -> Path:
    """The final WAV a recording is published as, in the media folder `media_dir`."""
    return media_dir / f"{recording_sid}.wav"


def mp3_file(wav: Path) -> Path:
    """The MP3 of the published WAV `wav` (encoded on the first ``.mp3`` request)."""
    return wav.with_suffix(".mp3")


def prompts_dir(spool_dir: Path) -> Path:
    """The spool folder of the audio the PBX plays (``<Say>`` renderings, ``<Play>``
    downloads), shared with the PBX as the recordings are."""
    return spool_dir / "prompts"
