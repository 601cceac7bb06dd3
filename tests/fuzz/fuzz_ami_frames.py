"""Coverage-guided fuzz target (atheris/libFuzzer) for the AMI frame reader and frame parser.

The same bytes fed whole and fed in chunks (sizes taken from the input) must give the same
frames; the buffer must stay within its bound; every frame must parse to a message, to None or
to MalformedFrame. Small limits make the drop paths common.

    python tests/fuzz/fuzz_ami_frames.py CORPUS_DIR tests/fuzz/seeds/ami \\
        -dict=tests/fuzz/ami.dict -max_total_time=600
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports(include=["adapter", "panoramisk"]):
    from adapter.pbx.asterisk.ami_frames import AmiFrameReader, Dropped, MalformedFrame, parse_frame

MAX_FRAME = 512
MAX_LINE = 96


def _feed(chunks: list[bytes]) -> list[str | Dropped]:
    reader = AmiFrameReader(max_frame=MAX_FRAME, max_line=MAX_LINE)
    out: list[str | Dropped] = []
    for chunk in chunks:
        out += reader.feed(chunk)
        assert len(reader._buffer) <= max(MAX_FRAME + 3, MAX_LINE + 1), len(reader._buffer)
    return out


def test_one_input(data: bytes) -> None:
    whole = _feed([data])
    step = (data[0] % 13) + 1 if data else 1
    chunked = _feed([data[i : i + step] for i in range(0, len(data), step)])
    assert whole == chunked, (whole, chunked)
    for item in whole:
        if isinstance(item, Dropped):
            continue
        with contextlib.suppress(MalformedFrame):
            parse_frame(item)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
