"""Hostile TwiML beyond tests/twiml/test_twiml_parse.py: nothing in a document makes the parser
touch the network (a local HTTP server must see no request, with and without the DOCTYPE byte scan),
DOCTYPEs in encodings the byte scan cannot read (UTF-32, UTF-7, EBCDIC), oversized bodies of every
content type, worst-case 64 kB documents, and findings that are always one line."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from lxml import etree

import adapter.twiml.parse as parse_module
from adapter.twiml import TwimlError, check_document, parse_document
from adapter.twiml.parse import MAX_BODY_BYTES

XML = "text/xml"


class _Canary(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        body = b'<!ENTITY leak "CANARY-LEAKED">' if self.path.endswith(".dtd") else b"CANARY"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def canary() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server (in a thread: libxml2 would fetch synchronously) recording each request."""
    hits: list[str] = []
    handler = type("Canary", (_Canary,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def network_documents(base: str) -> list[bytes]:
    docs = [
        f'<!DOCTYPE r [<!ENTITY xxe SYSTEM "{base}/entity">]><Response><Say>&xxe;</Say>'
        "</Response>",
        f'<!DOCTYPE Response SYSTEM "{base}/external.dtd"><Response><Say>&leak;</Say>'
        "</Response>",
        f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{base}/param.dtd"> %p;]><Response>'
        "<Say>&leak;</Say></Response>",
        f'<!DOCTYPE r PUBLIC "-//X//Y" "{base}/public.dtd"><Response/>',
        '<Response xmlns:xi="http://www.w3.org/2001/XInclude">'
        f'<xi:include href="{base}/xinclude" parse="text"/></Response>',
        '<Response xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:schemaLocation="urn:x {base}/schema.xsd" '
        f'xsi:noNamespaceSchemaLocation="{base}/schema2.xsd"><Hangup/></Response>',
        f'<?xml-stylesheet href="{base}/style.xsl"?><Response><Hangup/></Response>',
    ]
    return [d.encode() for d in docs]


def _visible(body: bytes) -> str:
    shown = [repr(check_document(body, XML))]
    try:
        shown.append(repr(parse_document(body, XML)))
    except TwimlError as error:
        shown.append(str(error))
    return "\n".join(shown)


@pytest.mark.parametrize("byte_scan", [True, False], ids=["byte-scan", "parser-only"])
def test_no_document_makes_the_parser_fetch_anything(
    canary: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch, byte_scan: bool
) -> None:
    base, hits = canary
    if not byte_scan:
        monkeypatch.setattr(parse_module, "_DOCTYPE_MARKERS", ())
    for body in network_documents(base):
        assert "CANARY" not in _visible(body)
    assert hits == []


def test_the_constructs_do_fetch_with_an_unsafe_parser(
    canary: tuple[str, list[str]], tmp_path: Path
) -> None:
    """The check above is not vacuous: with DTD loading and entities on, libxml2 reads the
    external DTD (from a file: URL here) and expands what it defines. Over HTTP it does the
    same when libxml2 is built with its HTTP client (LIBXML_FEATURES has "http"); the build
    bundled with lxml 6 has none, so no_network=True is then the second line, not the first."""
    dtd = tmp_path / "external.dtd"
    dtd.write_text('<!ENTITY leak "CANARY-LEAKED">')
    unsafe = etree.XMLParser(load_dtd=True, no_network=False, resolve_entities=True)
    body = f'<!DOCTYPE Response SYSTEM "{dtd.as_uri()}"><Response><Say>&leak;</Say></Response>'
    assert etree.fromstring(body.encode(), unsafe).findtext("Say") == "CANARY-LEAKED"
    assert "CANARY" not in _visible(body.encode())
    base, hits = canary
    if "http" in getattr(etree, "LIBXML_FEATURES", {"http"}):
        with contextlib.suppress(etree.XMLSyntaxError):
            etree.fromstring(network_documents(base)[1], unsafe)
        assert hits == ["/external.dtd"]


BILLION_LAUGHS = (
    '<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
    '<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">'
    '<!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;"><!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">]>'
    "<Response><Say>&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;</Say></Response>"
)


@pytest.mark.parametrize("encoding", ["UTF-32", "UTF-32-LE", "UTF-32-BE", "UTF-7", "CP037"])
def test_doctype_in_encodings_the_byte_scan_cannot_read(encoding: str) -> None:
    if encoding == "UTF-7":  # Python writes "<" as itself; "+ADw-" is UTF-7 for it too
        body = f'<?xml version="1.0" encoding="UTF-7"?>{BILLION_LAUGHS.replace("<", "+ADw-")}'
        body = body.encode()
    else:
        body = f'<?xml version="1.0" encoding="{encoding}"?>{BILLION_LAUGHS}'.encode(encoding)
    assert b"<!DOCTYPE" not in body  # invisible to the byte scan...
    started = time.thread_time()  # this thread's CPU: the machine's load cannot fail it
    with pytest.raises(TwimlError) as info:
        parse_document(body, XML)
    assert info.value.code == 12100  # ...refused all the same, and without expanding
    assert time.thread_time() - started < 1.0  # expanding &h; would take far more
    assert "aaaaaaaaaa" not in _visible(body)


@pytest.mark.parametrize(
    "body",
    [
        '<?xml version="1.0" encoding="UTF-16"?><Response/>'.encode("utf-16")[:-1],  # odd length
        b'<?xml version="1.0" encoding="UTF-8"?><Response><Say>\xc0\xaf</Say></Response>',
        b'<?xml version="1.0" encoding="UTF-8"?><Response><Say>\xed\xa0\x80</Say></Response>',
        b"<Response><Say>\x00</Say></Response>",
    ],
)
def test_bad_encodings_are_12100(body: bytes) -> None:
    with pytest.raises(TwimlError) as info:
        parse_document(body, XML)
    assert info.value.code == 12100


@pytest.mark.parametrize(
    "content_type", ["text/xml", "application/xml", "text/html", "text/plain"]
)
def test_a_megabyte_is_11750_for_every_text_type(content_type: str) -> None:
    body = b"<Response>" + b"<Say>x</Say>" * 90_000 + b"</Response>"
    assert len(body) > 1_000_000
    with pytest.raises(TwimlError) as info:
        parse_document(body, content_type)
    assert info.value.code == 11750


@pytest.mark.parametrize(
    "body",
    [
        b"<Response>" + b"<Pause/>" * 8000 + b"</Response>",
        b"<Response><Say " + b" ".join(b'a%d="x"' % i for i in range(6000)) + b">x</Say>"
        b"</Response>",
        b"<Response>" + b'<Record maxLength="x" timeout="y"/>' * 1500 + b"</Response>",
        b"<Response><Say>" + b"&#x1F389;" * 7000 + b"</Say></Response>",
        b"<Response>" + b"<Gather>" * 31 + b"</Gather>" * 31 + b"</Response>",
    ],
    ids=["many-verbs", "many-attributes", "many-findings", "char-refs", "max-depth"],
)
def test_worst_case_64_kb_documents_are_quick(body: bytes) -> None:
    assert len(body) <= MAX_BODY_BYTES
    # A guard against super-linear work on hostile input (the speed itself is bench row 7):
    # this thread's CPU time, so a loaded machine cannot fail it (wall time did, in CI).
    started = time.thread_time()
    findings = check_document(body, XML)
    assert time.thread_time() - started < 1.0
    assert all(not f.fatal for f in findings)


def _decl(encoding: str) -> bytes:
    return f'<?xml version="1.0" encoding="{encoding}"?>'.encode(encoding)


ENCODING_DECLS = st.sampled_from(
    [b"", b'<?xml version="1.0"?>', _decl("UTF-16"), _decl("UTF-32"), _decl("CP037"),
     _decl("UTF-7"), b'<?xml version="1.0" encoding="x-klingon"?>',
     b'<?xml version="1.0" encoding="EBCDIC-US"?>']
)


@settings(max_examples=300)
@given(decl=ENCODING_DECLS, tail=st.binary(max_size=300))
@example(decl=_decl("CP037"), tail=b"")  # libxml2: "Unsupported encoding: detecting EBCDIC\n"
def test_every_finding_is_one_line(decl: bytes, tail: bytes) -> None:
    for finding in check_document(decl + tail, XML):
        assert not any(ch in finding.message for ch in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
        assert "\n" not in str(finding)
