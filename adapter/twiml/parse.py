"""Safe parsing of a webhook response into a validated TwiML Document.

Order of checks, each one with Twilio's code: Content-Type (12300), size (11750, before any
parsing), XML well-formedness and safety (12100: no DOCTYPE, so no entity expansion or
external entities; no XInclude; at most MAX_DEPTH levels of elements), root element (12102),
then verbs and attributes (`adapter.twiml.validate`). The whole document is validated before
any verb can run: `parse_document` raises TwimlError when any finding is fatal.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from itertools import islice

from lxml import etree

from adapter.twiml import codes
from adapter.twiml.content_types import BodyKind, MediaType, classify
from adapter.twiml.findings import Finding, TwimlError, finding
from adapter.twiml.prompt_rules import SAY_DEFAULT_LOOP, say_too_long
from adapter.twiml.validate import validate_tree
from adapter.twiml.verbs import (
    Document,
    Hangup,
    Play,
    Redirect,
    Reject,
    Say,
    Unsupported,
    Verb,
    positional_builder,
)

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_DEPTH",
    "REMEMBERED_BODY_BYTES",
    "REMEMBERED_DOCUMENTS",
    "check_document",
    "parse_document",
]

MAX_BODY_BYTES = 65536  # "the response body is larger than 64 kB" -> 11750
MAX_DEPTH = 32  # <Response> is depth 1; deeper documents are refused with 12100
REMEMBERED_DOCUMENTS = 128  # valid documents parse_document keeps, the least recent dropped
REMEMBERED_BODY_BYTES = 4096  # larger bodies are never remembered (at most 512 KiB of bodies)

# One parser for every document: never resolves entities, never loads a DTD or anything over
# the network, and drops comments and processing instructions. XInclude is never run.
_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)

# "<!DOCTYPE" in the encodings a document can start in without an XML declaration we could
# read as ASCII; checked before libxml2 sees the body at all. (The marker inside a comment or
# CDATA section is refused too: TwiML never needs it.)
_DOCTYPE_MARKERS = tuple(
    "<!DOCTYPE".encode(encoding) for encoding in ("utf-8", "utf-16-le", "utf-16-be")
)
# A byte every marker has: a body without it (most documents: no comment, no CDATA) has none.
_MARKER_BYTE = b"!"


# Encodings (as libxml2 names them in docinfo) in which every "<" of the document is written
# with the byte b"<" in it: a body with at most MAX_DEPTH of those bytes has at most MAX_DEPTH
# elements, so it cannot be nested deeper, and the tree need not be walked to know it. (Not
# UTF-7, where "<" is "+ADw-", nor EBCDIC: those are walked.)
_LT_BYTE_ENCODINGS = frozenset({
    "utf-8", "us-ascii", "ascii", "iso-8859-1", "latin1", "latin-1",
    "utf-16", "utf-16le", "utf-16be",
})
_new_document = positional_builder(Document)


def parse_document(
    body: bytes, content_type: str | None, *, url: str | None = None, remember: bool = True
) -> Document:
    """The Document for a response body; raises TwimlError if any finding is fatal.

    `url` is the URL the body came from: an audio response becomes a single <Play> of it.
    Apps mostly answer with the same few documents: the last `REMEMBERED_DOCUMENTS` valid ones
    of at most `REMEMBERED_BODY_BYTES` are remembered (a Document is immutable, so they are
    shared), unless `remember` is False. A refused document is never remembered: it is read
    again each time.
    """
    if remember and isinstance(body, bytes) and len(body) <= REMEMBERED_BODY_BYTES:
        return _remembered_document(body, content_type, url)
    return _document(body, content_type, url)


def _document(body: bytes, content_type: str | None, url: str | None) -> Document:
    verbs, findings = _read(body, content_type, url)
    for f in findings:
        if f.fatal:
            raise TwimlError(findings)
    return _new_document(verbs, tuple(findings))


# lru_cache keeps only what returns: a TwimlError is raised again, read afresh, every time.
_remembered_document = lru_cache(maxsize=REMEMBERED_DOCUMENTS)(_document)


def check_document(body: bytes, content_type: str | None, url: str | None = None) -> list[Finding]:
    """Every finding about a response body, fatal or not, without raising (exactly those
    `parse_document` has)."""
    return _read(body, content_type, url)[1]


def unsupported_reached(verbs: Sequence[Verb]) -> list[Finding]:
    """As fatal findings, each verb of a valid document that this adapter does not support yet
    and that a call would reach: the call gets the error prompt and ends there (what
    `twiml-adapter check` adds, so that it fails on what fails at run time)."""
    found: list[Finding] = []
    for verb in verbs:
        if isinstance(verb, Hangup | Reject | Redirect):
            break  # nothing after it runs in this document
        if isinstance(verb, Unsupported):
            found.append(Finding(code=codes.SCHEMA_VALIDATION_WARNING.number, fatal=True,
                                 message=f"{verb.why}: a call that reaches it hears the error "
                                 "prompt and ends", line=verb.line, verb=verb.name))
    return found


def _read(
    body: bytes, content_type: str | None, url: str | None
) -> tuple[tuple[Verb, ...], list[Finding]]:
    media = classify(content_type)
    if media is None:
        return (), [
            finding(
                codes.INVALID_CONTENT_TYPE,
                f"{content_type!r} is not text/xml, application/xml, text/html, text/plain "
                "or a supported audio type",
            )
        ]
    if media.kind is BodyKind.AUDIO:
        return _read_audio(media, url)
    if len(body) > MAX_BODY_BYTES:
        return (), [
            finding(
                codes.RESPONSE_BODY_TOO_LARGE,
                f"the body is {len(body)} bytes, over the {MAX_BODY_BYTES}-byte limit",
            )
        ]
    if media.kind is BodyKind.TEXT:
        return _read_text(body, media)
    return _read_twiml(body)


def _read_audio(media: MediaType, url: str | None) -> tuple[tuple[Verb, ...], list[Finding]]:
    """Twilio plays an audio response, then hangs up: a document with one <Play>."""
    if url is None:
        return (), [
            finding(
                codes.INVALID_CONTENT_TYPE,
                f"an {media.mime} response can only be played given the URL it came from",
            )
        ]
    return (Play(url=url, loop=1, digits=None),), []


def _read_text(body: bytes, media: MediaType) -> tuple[tuple[Verb, ...], list[Finding]]:
    """Twilio reads a text/plain response out loud, then hangs up: one <Say>."""
    charset = media.charset or "utf-8"
    try:
        text = body.decode(charset).strip()
    except (LookupError, UnicodeDecodeError) as error:
        return (), [finding(codes.DOCUMENT_PARSE_FAILURE, f"cannot decode as {charset}: {error}")]
    if not text:
        return (), [finding(codes.SAY_INVALID_TEXT, "the text/plain body is empty")]
    too_long = say_too_long(text)
    findings = [finding(codes.SAY_TEXT_TOO_LONG, too_long)] if too_long is not None else []
    return (Say(text=text, voice=None, language=None, loop=SAY_DEFAULT_LOOP),), findings


def _read_twiml(body: bytes) -> tuple[tuple[Verb, ...], list[Finding]]:
    root_or_failure = _parse_xml(body)
    if isinstance(root_or_failure, Finding):
        return (), [root_or_failure]
    return validate_tree(root_or_failure)


def _parse_xml(body: bytes) -> etree._Element | Finding:
    """The root element of a safe, well-formed document, or the 12100 finding refusing it."""
    if not body.strip():
        return finding(codes.DOCUMENT_PARSE_FAILURE, "the body is empty")
    if _MARKER_BYTE in body:
        for marker in _DOCTYPE_MARKERS:
            if marker in body:
                return _doctype_refused()
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as error:
        line, _column = error.position
        return finding(codes.DOCUMENT_PARSE_FAILURE, _syntax_message(error), line=line or None)
    except (etree.LxmlError, ValueError) as error:
        return finding(
            codes.DOCUMENT_PARSE_FAILURE, _one_line(f"not a well-formed document: {error}")
        )
    if root is None:
        return finding(codes.DOCUMENT_PARSE_FAILURE, "the document has no root element")
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        return _doctype_refused()
    depth = _depth(root) if _may_be_too_deep(body, docinfo.encoding, root) else 1
    if depth > MAX_DEPTH:
        return finding(
            codes.DOCUMENT_PARSE_FAILURE,
            f"elements are nested {depth} deep, more than the {MAX_DEPTH} allowed",
        )
    return root


def _doctype_refused() -> Finding:
    return finding(
        codes.DOCUMENT_PARSE_FAILURE,
        "a document type declaration (DOCTYPE) is not allowed in TwiML",
    )


def _syntax_message(error: etree.XMLSyntaxError) -> str:
    return _one_line(f"not well-formed XML: {error.msg or 'not well-formed'}")


def _one_line(text: str) -> str:
    """libxml2's messages can hold line breaks (e.g. "detecting EBCDIC\n"); a finding is one
    line in logs and callbacks."""
    return " ".join(text.split())


def _may_be_too_deep(body: bytes, encoding: str | None, root: etree._Element) -> bool:
    """True unless the tree surely has at most MAX_DEPTH elements (only then can it be deeper):
    counted in the body's bytes when its encoding writes each "<" with the byte b"<", else in
    the tree."""
    if encoding is not None and encoding.lower() in _LT_BYTE_ENCODINGS:
        return body.count(b"<") > MAX_DEPTH
    return _more_nodes_than(root, MAX_DEPTH)


def _more_nodes_than(root: etree._Element, count: int) -> bool:
    """True when the tree has more than `count` nodes: only then can it be deeper than that
    (most documents are a handful of elements, counted without a walk in Python)."""
    return next(islice(root.iter(), count, None), None) is not None


def _depth(root: etree._Element) -> int:
    """How many levels of elements the tree has (a lone root is 1)."""
    deepest = 0
    stack: list[tuple[etree._Element, int]] = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in element)
    return deepest
