"""Recordings: post-processing of the audio the PBX records, and the media it plays."""

from __future__ import annotations

__all__: list[str] = []
