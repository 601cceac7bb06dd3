"""``uuid_record`` as switch_ivr_async.c runs it through mod_commands' session_record_function:
the media bugs of a call (`FakeRecording`), start/stop/mask/unmask/pause/resume with the exact
replies, RECORD_START/RECORD_STOP and the file rendered from the call's media; a mixin of
`esl_server.call.FakeCall`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from esl_server.codec import SESS_REC_SYNTAX, Lines, switch_true
from esl_server.media import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    tone_frame,
    tone_span,
    write_open_wav,
    write_pcm,
)


@dataclass(slots=True)
class FakeRecording:
    """One ``uuid_record`` of the channel (a media bug), as switch_ivr_async.c runs it."""

    path: str  # as FreeSWITCH resolved it: the Record-File-Path of its events
    local: Path
    started: float
    variables: Lines  # the per-recording {…} variables, in the order given
    mode: str  # "mixed", "read"
    pre_buffer_frames: int
    masks: list[list[float]] = field(default_factory=list)  # [from, to] in call seconds
    pauses: list[list[float]] = field(default_factory=list)
    stopped: float | None = None
    cause: str = ""
    lag_s: float = 0.0  # the pre-buffer lag (lab notes §7.6)
    frames: int = 0
    discarded: bool = False


class UuidRecording:
    """The ``uuid_record`` side of `FakeCall`: its running and finished media bugs."""

    def _recording_var(self, variables: dict[str, str], name: str) -> str | None:
        """get_recording_var: the recording's own {…} variables first, then the channel's."""
        return variables[name] if name in variables else self.channel.get_var(name)

    def uuid_record(self, action: str, path: str, variables: str) -> str:
        if action == "start":
            return self._record_start(path, variables)
        if action == "stop":
            targets = list(self.recordings.values()) if path == "all" else (
                [self.recordings[path]] if path in self.recordings else [])
            if not targets:
                return "-ERR Cannot stop record session!\n"
            for recording in targets:
                self._stop_recording(recording)
            return "+OK Success\n"
        if action in ("mask", "unmask", "pause", "resume"):
            recording = self.recordings.get(path)
            if recording is None:
                return f"-ERR Cannot {action} recording session!\n"
            spans = recording.masks if action in ("mask", "unmask") else recording.pauses
            on = action in ("mask", "pause")
            if on and not (spans and math.isinf(spans[-1][1])):
                spans.append([self.fs.now(), math.inf])
            elif not on and spans and math.isinf(spans[-1][1]):
                spans[-1][1] = self.fs.now()
            return "+OK Success\n"
        return f"-USAGE: {SESS_REC_SYNTAX}\n"

    def _record_start(self, path: str, variables: str) -> str:
        resolved = self.fs.resolve(path)
        if resolved in self.recordings:
            return "+OK Success\n"  # "Already recording": no second recording, no event
        local = self.fs.local_path(resolved)
        if local is None or not self.fs.can_write(local):
            self.channel.set_var("record_completion_cause", "uri-failure")
            return "-ERR Cannot record session!\n"
        local.parent.mkdir(parents=True, exist_ok=True)  # uuid_record makes the folders
        own: Lines = []
        text = unquote(variables)
        if text.startswith("{") and text.endswith("}"):
            for item in filter(None, text[1:-1].split(",")):
                name, _, value = item.partition("=")
                own.append((name, value))
        lookup = dict(own)
        read_only = switch_true(self._recording_var(lookup, "RECORD_READ_ONLY"))
        mode = "read" if read_only else "mixed"
        pre_buffer = self._recording_var(lookup, "RECORD_PRE_BUFFER_FRAMES")
        frames = 25 if pre_buffer is None else max(0, int(pre_buffer or "0"))
        recording = FakeRecording(resolved, local, self.fs.now(), own, mode, frames)
        write_open_wav(local, 1)
        self.recordings[resolved] = recording
        self.emit("RECORD_START",
                  [("Record-File-Path", resolved),
                   *[(f"Recording-Variable-{name}", value) for name, value in own]],
                  calling=("switch_ivr_async.c", "record_callback", "1481"))
        self.emit("MEDIA_BUG_START", before=[("Media-Bug-Function", "session_record"),
                                             ("Media-Bug-Target", resolved)],
                  calling=("switch_core_media_bug.c", "switch_core_media_bug_add", "1014"))
        return "+OK Success\n"

    def _stop_recording(self, recording: FakeRecording) -> None:
        """The media bug is removed now: the file is closed and RECORD_STOP fired."""
        del self.recordings[recording.path]
        self._finish_recording(recording, "success-maxtime", self.fs.now())

    def _finish_recording(self, recording: FakeRecording, cause: str, at: float) -> None:
        """Close the file (real WAV: read = the caller's tone, write = silence) and fire
        RECORD_STOP with the record_* variables."""
        recording.stopped, recording.cause = at, cause
        self.finished_recordings.append(recording)
        one_sided = recording.mode == "mixed"  # the WRITE side carries no frames
        # The default 25-frame pre-buffer keeps a one-sided recording 0.5 s behind: the last
        # 0.5 s is lost and mask/pause act on older audio (lab notes §7.6, §8.5).
        lag = recording.pre_buffer_frames * 0.02 if one_sided else 0.0
        recording.lag_s = lag
        reads, writes = bytearray(), bytearray()
        frame_s = FRAME_SAMPLES / SAMPLE_RATE
        count = int(max(0.0, at - lag - recording.started) / frame_s + 1e-6)
        if not recording.pauses and not recording.masks:  # the whole span at once
            reads += self._read_span(recording.started, count)
            writes += bytes(2 * FRAME_SAMPLES * count)
            count = 0
        for index in range(count):
            t = recording.started + index * frame_s
            if any(a - lag <= t < b - lag for a, b in recording.pauses):
                continue  # pause drops the audio (the file is shorter)
            if any(a - lag <= t < b - lag for a, b in recording.masks):
                reads += bytes(2 * FRAME_SAMPLES)  # mask writes zeros (the time is kept)
                writes += bytes(2 * FRAME_SAMPLES)
                continue
            reads += self._read_frame(t)
            writes += bytes(2 * FRAME_SAMPLES)
        recording.frames = len(reads) // 2
        channel = self.channel
        if recording.frames == 0:  # "Discarding empty file"
            recording.discarded = True
            recording.local.unlink(missing_ok=True)  # "Discarding empty file"
            channel.set_var("RECORD_DISCARDED", "true")
            cause = recording.cause = "empty-file"
        else:
            write_pcm(recording.local, recording.mode, reads, writes)
            channel.set_var("record_file_size", str(recording.local.stat().st_size))
        channel.set_var("record_samples", str(recording.frames))
        channel.set_var("record_seconds", str(recording.frames // SAMPLE_RATE))
        channel.set_var("record_ms", str(recording.frames * 1000 // SAMPLE_RATE))
        channel.set_var("record_completion_cause", cause)
        self.emit("RECORD_STOP",
                  [("Record-File-Path", recording.path),
                   *[(f"Recording-Variable-{n}", v) for n, v in recording.variables],
                   ("Record-Completion-Cause", cause)],
                  calling=("switch_ivr_async.c", "send_record_stop_event", "1240"))
        self.emit("MEDIA_BUG_STOP", before=[("Media-Bug-Function", "session_record"),
                                            ("Media-Bug-Target", recording.path)],
                  calling=("switch_core_media_bug.c", "switch_core_media_bug_destroy", "84"))

    def _read_span(self, t: float, frames: int) -> bytes:
        if self.caller_tone_hz is None:
            return bytes(2 * FRAME_SAMPLES * frames)
        return tone_span(self.caller_tone_hz, t - self.created, frames)

    def _read_frame(self, t: float) -> bytes:
        if self.caller_tone_hz is None:
            return bytes(2 * FRAME_SAMPLES)
        return tone_frame(self.caller_tone_hz, t - self.created)
