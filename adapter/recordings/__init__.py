"""Recordings: a recording's whole life after the PBX wrote it, used by the live call and by
recovery alike.

- `layout`: where every spool and media file is;
- `finalise`: the PBX's files → the final WAV, in the calling thread or, for a long recording,
  in a worker process (`finalise_worker`); `assemble` makes it (with `tracks`, `silence`,
  `padding`, on top of `media`, the WAV file format);
- `status_callback`: source names, ErrorCodes and the status-callback parameters;
- `wav_repair`: the header of a WAV whose writer died;
- `transcode`: ffmpeg (the ``.mp3`` media, and audio converted for the PBX to play);
- `store`: the calls and recordings tables.
"""

from __future__ import annotations

__all__: list[str] = []
