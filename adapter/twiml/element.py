"""One TwiML element under validation: the attribute rules every verb shares, and its findings.

Each attribute is read once (`Element.take` and the typed readers built on it); what is still
unread when the verb is done is reported as not allowed (12200) and ignored. A value that breaks
a WARNING-level rule is replaced by its documented default; the finding says which.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

from lxml import etree

from adapter.twiml import codes
from adapter.twiml.attributes import is_fetchable_url, parse_bool, parse_integer, parse_method
from adapter.twiml.codes import TwilioCode
from adapter.twiml.findings import Finding, finding
from adapter.twiml.verbs import Unsupported

__all__ = ["Element", "has_text", "shown", "source_line", "unsupported"]

T = TypeVar("T")


class Element:
    """One element being validated: its unread attributes and the findings made so far."""

    def __init__(self, element: etree._Element, findings: list[Finding]) -> None:
        self.element = element
        self.name = str(element.tag)
        self.line = source_line(element)
        self.findings = findings
        self._unread = {str(key): str(value) for key, value in element.attrib.items()}

    def take(self, attribute: str) -> str | None:
        """The raw value of `attribute` (case-sensitive), or None when absent."""
        return self._unread.pop(attribute, None)

    def report(self, code: TwilioCode, detail: str, attribute: str | None = None) -> None:
        """A finding about this element (or one of its attributes)."""
        self.findings.append(
            finding(code, detail, line=self.line, verb=self.name, attribute=attribute)
        )

    def children(self) -> Iterator[etree._Element]:
        """The nested elements, in document order (text and tails left out)."""
        return (child for child in self.element if isinstance(child.tag, str))

    def nested(self, child: etree._Element) -> Element:
        """A nested element (a noun) to validate, reporting into the same findings."""
        return Element(child, self.findings)

    def has_text(self) -> bool:
        """True when the element holds text of its own (outside nested elements)."""
        return has_text(self.element.text) or any(has_text(child.tail) for child in self.element)

    def report_unknown_attributes(self) -> None:
        """Twilio's 12200 for each attribute the verb does not have; the attribute is ignored."""
        for attribute in self._unread:
            self.report(
                codes.SCHEMA_VALIDATION_WARNING,
                f"attribute '{attribute}' is not allowed on <{self.name}>; ignored",
                attribute,
            )
        self._unread.clear()

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
            self.report(codes.SCHEMA_VALIDATION_WARNING, f"<{self.name}> takes no text; ignored")

    def report_leftovers(self) -> None:
        """12200 for what a verb without content has besides its attributes: the attributes it
        does not have, then text and nested elements. All are ignored."""
        self.report_unknown_attributes()
        self.report_text()
        for child in self.children():
            self.report_nested(child)

    def value(
        self,
        attribute: str,
        parse: Callable[[str], T | None],
        code: TwilioCode,
        default: T,
        problem: str,
    ) -> T:
        """The attribute as `parse` reads it; `default` when absent, or when `parse` refuses it
        (then `code` is reported: the value quoted, followed by `problem`)."""
        raw = self.take(attribute)
        if raw is None:
            return default
        value = parse(raw)
        if value is None:
            self.report(code, f"{shown(raw)} {problem}", attribute)
            return default
        return value

    def integer(
        self,
        attribute: str,
        code: TwilioCode,
        default: int,
        minimum: int = 0,
        maximum: int = 999_999_999,
    ) -> int:
        """A whole number from `minimum` to `maximum`."""
        return self.value(
            attribute,
            lambda raw: parse_integer(raw, minimum, maximum),
            code,
            default,
            f"is not a whole number from {minimum} to {maximum}; using {default}",
        )

    def boolean(self, attribute: str, code: TwilioCode, default: bool) -> bool:
        """``true`` or ``false``, in any letter case."""
        return self.value(
            attribute, parse_bool, code, default,
            f"is not true or false; using {str(default).lower()}",
        )

    def method(self, attribute: str, code: TwilioCode, default: str) -> str:
        """``GET`` or ``POST``, in any letter case (upper-cased)."""
        return self.value(
            attribute, parse_method, code, default, f"is not GET or POST; using {default}"
        )

    def choice(
        self,
        attribute: str,
        allowed: frozenset[str],
        default: str,
        code: TwilioCode = codes.SCHEMA_VALIDATION_WARNING,
    ) -> str:
        """One of `allowed` (case-sensitive, as Twilio's schema). Where Twilio documents no code
        for another value, it is a 12200 warning and the default, as for other choices."""
        return self.value(
            attribute,
            lambda raw: raw if raw in allowed else None,
            code,
            default,
            f"is not one of {', '.join(sorted(allowed))}; using {default}",
        )

    def url(self, attribute: str, code: TwilioCode) -> str | None:
        """The URL as written; None when absent, or when invalid under a WARNING code."""
        raw = self.take(attribute)
        if raw is None or is_fetchable_url(raw):
            return raw
        self.report(code, f"{shown(raw)} is not a relative or http(s) URL", attribute)
        return None if not code.fatal else raw

    def text_url(self, *, required: bool) -> str | None:
        """The URL written as the element's text (surrounding whitespace removed), or None."""
        for child in self.children():
            self.report_nested(child)
        text = "".join([self.element.text or "", *(child.tail or "" for child in self.element)])
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


def shown(raw: str, limit: int = 60) -> str:
    """`raw` quoted for a message, shortened when long."""
    return repr(raw if len(raw) <= limit else raw[:limit] + "...")


def has_text(text: str | None) -> bool:
    """True for text that is not only whitespace."""
    return bool(text and text.strip())
