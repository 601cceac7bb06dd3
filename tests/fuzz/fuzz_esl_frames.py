"""Coverage-guided fuzz target (atheris/libFuzzer) for the FreeSWITCH ESL framer and event parser.

The same bytes fed whole and fed in chunks (sizes taken from the input) must give the same frames,
or both fail with EslProtocolError (which ends the connection); every ``text/event-plain`` frame
must parse to an event or raise EslProtocolError. Small limits make the over-limit paths common.

    python tests/fuzz/fuzz_esl_frames.py CORPUS_DIR tests/fuzz/seeds/esl -max_total_time=600
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports(include=["adapter"]):
    from adapter.pbx.freeswitch.protocol import EslFrame, EslParser, EslProtocolError

MAX_HEADER = 96
MAX_BODY = 256


def _feed(chunks: list[bytes]) -> tuple[list[EslFrame], bool]:
    parser = EslParser(max_header_bytes=MAX_HEADER, max_body_bytes=MAX_BODY)
    frames: list[EslFrame] = []
    try:
        for chunk in chunks:
            frames += parser.feed(chunk)
    except EslProtocolError:
        return frames, True
    return frames, False


def test_one_input(data: bytes) -> None:
    whole = _feed([data])
    step = (data[0] % 13) + 1 if data else 1
    chunked = _feed([data[i : i + step] for i in range(0, len(data), step)])
    assert whole[1] == chunked[1], (whole, chunked)
    if not whole[1]:
        assert whole[0] == chunked[0], (whole, chunked)
    for frame in whole[0]:
        with contextlib.suppress(EslProtocolError):
            frame.event()


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
