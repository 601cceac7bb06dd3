"""The RTP pcap that tests/support/sipp.py writes for sipp's play_pcap_audio, read back: what the
SIP tests claim the PBX receives (G.711 audio, then an RFC 4733 key) is what the file holds."""

from __future__ import annotations

import audioop
import struct
from pathlib import Path

import pytest
from sipp import Dtmf, write_rtp_pcap


def read_rtp(path: Path) -> list[tuple[float, int, bool, int, int, bytes]]:
    """(time, payload type, marker, sequence, timestamp, payload) of every packet."""
    data = path.read_bytes()
    magic, _major, _minor, _zone, _sigfigs, _snaplen, linktype = struct.unpack_from("<IHHiIII",
                                                                                  data)
    assert magic == 0xA1B2C3D4 and linktype == 1  # Ethernet
    packets, offset = [], 24
    while offset < len(data):
        seconds, micros, length, _ = struct.unpack_from("<IIII", data, offset)
        frame = data[offset + 16:offset + 16 + length]
        offset += 16 + length
        assert frame[12:14] == b"\x08\x00" and frame[14 + 9] == 17  # IPv4, UDP
        udp = frame[34:]
        assert struct.unpack_from("!H", udp, 4)[0] == len(udp)
        rtp = udp[8:]
        first, second, seq, stamp, _ssrc = struct.unpack_from("!BBHII", rtp)
        assert first == 0x80
        packets.append((seconds + micros / 1e6, second & 0x7F, bool(second & 0x80), seq, stamp,
                        rtp[12:]))
    return packets


@pytest.mark.parametrize(("codec", "pt", "decode"), [
    ("PCMU", 0, audioop.ulaw2lin), ("PCMA", 8, audioop.alaw2lin)])
def test_audio_then_a_key_then_audio(tmp_path: Path, codec: str, pt: int, decode: object) -> None:
    tone = [8000 if n % 2 else -8000 for n in range(1600)]  # 0.2 s
    pcap = write_rtp_pcap(tmp_path / "x.pcap", [tone, Dtmf("#", 0.1), [0] * 320], codec)
    packets = read_rtp(pcap)
    audio = [p for p in packets if p[1] == pt]
    events = [p for p in packets if p[1] == 101]
    assert len(audio) == 10 + 2 and len(events) == 5 + 3
    assert [p[3] for p in packets] == list(range(len(packets)))  # sequence numbers
    assert audio[0][2] and not any(p[2] for p in audio[1:])  # marker on the first audio only
    # 20 ms apart, 160 samples each; the events share the timestamp where the key started
    assert [round(p[0], 3) for p in audio[:10]] == [round(0.02 * n, 3) for n in range(10)]
    assert [p[4] for p in audio[:10]] == [160 * n for n in range(10)]
    assert {p[4] for p in events} == {1600}
    assert events[0][2] and not any(p[2] for p in events[1:])
    keys = [struct.unpack("!BBH", p[5]) for p in events]
    assert {k[0] for k in keys} == {11}  # '#'
    assert [k[2] for k in keys] == [160, 320, 480, 640, 800, 800, 800, 800]
    assert [bool(k[1] & 0x80) for k in keys] == [False] * 5 + [True] * 3  # the end bit
    assert audio[10][4] == 1600 + 800  # audio resumes after the key's duration
    assert audio[10][0] == pytest.approx(0.3)
    linear = decode(audio[0][5], 2)  # type: ignore[operator]
    assert abs(struct.unpack_from("<h", linear, 2)[0] - 8000) < 300
