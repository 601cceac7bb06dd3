"""The audio of the sipp tests (tests/sip): what a SIP party sends (known WAVs as samples, for
`sipp.write_rtp_pcap`) and the checks of what the adapter recorded from it."""

from __future__ import annotations

from pathlib import Path

from adapter_harness import call_reported
from audio_checks import channel_samples, tones_440_1000, write_tone
from sipp import answered_uac, answering_uas, start_sipp, write_rtp_pcap
from twiml_app import TwimlApp

from adapter.recordings import media
from adapter.service import Adapter

__all__ = ["TO", "assert_caller_tone", "assert_dual_caller_callee",
           "call_through_to_a_sipp_callee", "silence", "tone", "tone440"]

TO = "+15557650000"  # the number the sipp caller calls


def silence(seconds: float) -> list[int]:
    return [0] * int(8000 * seconds)


def tone(tmp_path: Path, hz: int, seconds: float) -> list[int]:
    """Audio from a known WAV (`hz`, 8 kHz mono 16-bit), as samples."""
    return channel_samples(write_tone(tmp_path / f"tone-{hz}.wav", hz, seconds), 0)


def tone440(tmp_path: Path, seconds: float) -> list[int]:
    """The caller's audio: 440 Hz."""
    return tone(tmp_path, 440, seconds)


def assert_caller_tone(wav: Path) -> None:
    """The recording holds the caller's 440 Hz, loud, and not some other tone."""
    assert media.wav_is_final(wav)
    p440, p1000 = tones_440_1000(wav, 0)
    assert p440 > 20 * p1000
    assert p440 > 1e6, p440  # a full-scale-ish sine, not line noise


def assert_dual_caller_callee(wav: Path, *, start: float, length: float = 2.0) -> None:
    """A stereo recording over `length` s from `start`: the caller's 440 Hz on channel 1, the
    callee's 1000 Hz on channel 2, each loud and free of the other."""
    assert media.wav_is_final(wav)
    assert media.wav_info(wav).channels == 2
    caller_440, caller_1000 = tones_440_1000(wav, 0, start=start, length=length)
    callee_440, callee_1000 = tones_440_1000(wav, 1, start=start, length=length)
    assert caller_440 > 20 * caller_1000 and caller_440 > 1e6
    assert callee_1000 > 20 * callee_440 and callee_1000 > 1e6


async def call_through_to_a_sipp_callee(adapter: Adapter, app: TwimlApp, tmp_path: Path, *,
                                        trunk: tuple[str, int], callee_port: int) -> str:
    """A sipp caller (440 Hz, BYE 6 s after its ACK) calls `trunk`; the app's TwiML dials a sipp
    callee (the UAS, 1000 Hz) waiting on `callee_port`. Both scenarios must pass (the PBX sends
    the callee its BYE); returns the CallSid once every callback of the call went out."""
    callee_pcap = write_rtp_pcap(tmp_path / "callee.pcap", [tone(tmp_path, 1000, 8.0)], "PCMU")
    caller_pcap = write_rtp_pcap(tmp_path / "caller.pcap", [tone440(tmp_path, 8.0)], "PCMU")
    callee = await start_sipp(answering_uas(callee_pcap, "PCMU"), tmp_path, call=None,
                              sip_port=callee_port, name="uas")
    caller = await start_sipp(answered_uac(caller_pcap, "PCMU", hang_up_after_ms=6000),
                              tmp_path, call=(TO, trunk))
    voice = await app.next_request("/voice", within=15)
    returncode, output = await caller.result()
    assert returncode == 0, output
    returncode, output = await callee.result()
    assert returncode == 0, output  # answered, then the BYE the PBX sent it
    call_sid = voice.params["CallSid"]
    assert await call_reported(adapter) == call_sid
    return call_sid
