"""One TwiML element under validation: where its findings go, and the content checks verbs share.

Its attributes are read by the verb's compiled `rule_table.RuleTable` (one pass); what the
element holds besides them (text, nested elements) is checked here. Nothing is computed for an
element that is fine: its line is looked up only when a finding is made.
"""

from __future__ import annotations

from lxml import etree

from adapter.twiml import codes
from adapter.twiml.attributes import is_fetchable_url
from adapter.twiml.codes import TwilioCode
from adapter.twiml.findings import Finding, finding, shown
from adapter.twiml.verbs import Unsupported

__all__ = ["Element", "has_text", "shown", "source_line", "unsupported"]


class Element:
    """One element being validated (`node`, named `name`) and the findings made so far."""

    __slots__ = ("findings", "name", "node")

    def __init__(self, node: etree._Element, findings: list[Finding], name: str) -> None:
        self.node = node
        self.name = name
        self.findings = findings

    @property
    def line(self) -> int | None:
        """The line the element starts on, when known."""
        return source_line(self.node)

    def report(self, code: TwilioCode, detail: str, attribute: str | None = None) -> None:
        """A finding about this element (or one of its attributes)."""
        self.findings.append(
            finding(code, detail, line=self.line, verb=self.name, attribute=attribute)
        )

    def children(self) -> list[etree._Element]:
        """The nested elements, in document order (text and tails left out)."""
        node = self.node
        if not len(node):
            return []
        return [child for child in node if isinstance(child.tag, str)]

    def text_and_children(self) -> tuple[bool, list[etree._Element]]:
        """`has_text` and `children` in one pass over the element's content."""
        node = self.node
        text = node.text
        texty = bool(text and not text.isspace())
        if not len(node):
            return texty, []
        children: list[etree._Element] = []
        for child in node:
            if not texty:
                tail = child.tail
                texty = bool(tail and not tail.isspace())
            if isinstance(child.tag, str):
                children.append(child)
        return texty, children

    def nested(self, child: etree._Element) -> Element:
        """A nested element (a noun) to validate, reporting into the same findings."""
        return Element(child, self.findings, str(child.tag))

    def has_text(self) -> bool:
        """True when the element holds text of its own (outside nested elements)."""
        node = self.node
        text = node.text
        if text and not text.isspace():
            return True
        if len(node):
            for child in node:
                tail = child.tail
                if tail and not tail.isspace():
                    return True
        return False

    def report_nested(self, child: etree._Element) -> None:
        """12200 for an element that may not be nested here; it is ignored."""
        self.findings.append(
            finding(
                codes.SCHEMA_VALIDATION_WARNING,
                f"<{child.tag}> cannot be nested in <{self.name}>; ignored",
                line=source_line(child),
                verb=self.name,
            )
        )

    def report_text(self) -> None:
        """12200 for text in a verb that takes none; it is ignored."""
        if self.has_text():
            self.report_ignored_text()

    def report_ignored_text(self) -> None:
        """12200 for the text of a verb that takes none (`has_text` said it has some)."""
        self.report(codes.SCHEMA_VALIDATION_WARNING, f"<{self.name}> takes no text; ignored")

    def report_content(self) -> None:
        """12200 for what a verb without content holds: text, then nested elements. All are
        ignored."""
        node = self.node
        if not len(node):  # the usual <Verb .../>: only its text to look at
            text = node.text
            if text and not text.isspace():
                self.report_ignored_text()
            return
        self.report_text()
        for child in self.children():
            self.report_nested(child)

    def text_url(self, *, required: bool) -> str | None:
        """The URL written as the element's text (surrounding whitespace removed), or None."""
        node = self.node
        if len(node):
            for child in self.children():
                self.report_nested(child)
            text = "".join([node.text or "", *(child.tail or "" for child in node)])
        else:
            text = node.text or ""
        url = text.strip()
        if not url:
            if required:
                self.report(codes.INVALID_URL_FORMAT, f"<{self.name}> has no URL")
            return None
        if not is_fetchable_url(url):
            self.report(codes.INVALID_URL_FORMAT, f"{shown(url)} is not a relative or http(s) URL")
        return url


def unsupported(name: str, attributes_of: etree._Element, at: etree._Element) -> Unsupported:
    """The `Unsupported` verb `name`, with the attributes of `attributes_of` in document order
    and the line of `at`."""
    return Unsupported(
        name=name,
        attributes=tuple((str(k), str(v)) for k, v in attributes_of.attrib.items()),
        line=source_line(at),
    )


def source_line(element: etree._Element) -> int | None:
    """The line an element starts on, when libxml2 knows it."""
    line: object = element.sourceline
    return line if isinstance(line, int) else None


def has_text(text: str | None) -> bool:
    """True for text that is not only whitespace."""
    return bool(text and not text.isspace())
