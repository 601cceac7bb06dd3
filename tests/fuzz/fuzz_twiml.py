"""Coverage-guided fuzz target (atheris/libFuzzer) for the TwiML parser and validator.

Any input must end in a Document or a TwimlError whose findings agree with `check_document`;
every finding must be one line. Anything else (another exception, a failed assertion, a hang
past libFuzzer's -timeout) is a crash.

    python tests/fuzz/fuzz_twiml.py CORPUS_DIR tests/fuzz/seeds/twiml \\
        -dict=tests/fuzz/twiml.dict -max_total_time=600
(`make fuzz` runs it with these options.)
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["adapter"]):
    from adapter.twiml import Document, TwimlError, check_document, parse_document

CONTENT_TYPES = ("text/xml", "text/plain; charset=utf-8")


def test_one_input(data: bytes) -> None:
    for content_type in CONTENT_TYPES:
        findings = check_document(data, content_type, "https://app.example.com/x")
        for finding in findings:
            assert "\n" not in str(finding) and "\r" not in str(finding), finding
        try:
            document = parse_document(data, content_type, url="https://app.example.com/x")
        except TwimlError as error:
            assert any(f.fatal for f in findings)
            assert list(error.findings) == findings
        else:
            assert isinstance(document, Document)
            assert list(document.findings) == findings
            assert not any(f.fatal for f in findings)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
