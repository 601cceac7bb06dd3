"""Compiled attribute rules: a verb's attributes read and checked in one pass over the element.

Each verb family's module (`recording_rules`, `dial_rules`, ...) declares its attributes as
`Rule`s, in the order Twilio documents them, and compiles them once, at import, into a
`RuleTable`. `RuleTable.read` then walks the element's attributes once, in document order: one
dict lookup each, and one parser call for a value that needs reading. A value that breaks its
rule is replaced by the rule's fallback (its documented default, unless it says otherwise) and
reported with the rule's code, the value quoted and `problem`; an attribute the table does not
have is 12200 and ignored. Findings come in the rules' order, then the unknown attributes in
document order, whatever order the document wrote them in.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from adapter.twiml import codes
from adapter.twiml.attributes import fetchable_url, integer_parser, parse_bool, parse_method
from adapter.twiml.codes import TwilioCode
from adapter.twiml.findings import shown

if TYPE_CHECKING:
    from adapter.twiml.element import Element

__all__ = [
    "AS_WRITTEN",
    "DEFAULT",
    "Rule",
    "RuleTable",
    "as_written",
    "boolean",
    "choice",
    "integer",
    "method",
    "url",
    "value",
]

# A value check run on a value its parser accepted: None, or (the value to use, the code, what
# the finding says). E.g. <Dial timeout> clamped into 5..600.
Check = Callable[[Any], "tuple[Any, TwilioCode, str] | None"]
DEFAULT: Any = object()
"""`Rule.fallback`: the rule's default (what a refused value is replaced by, unless told)."""
AS_WRITTEN: Any = object()
"""`Rule.fallback`: the refused value itself (a fatal finding: the document will not run)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One attribute of a verb: how its value is read, and what happens when it is refused."""

    name: str
    parse: Callable[[str], Any] | None = None
    """The value read, or None when refused; None: the value as written, never refused."""
    code: TwilioCode = codes.SCHEMA_VALIDATION_WARNING
    default: Any = None
    """The value when the attribute is absent."""
    problem: str = ""
    """What a refusal says after the quoted value."""
    fallback: Any = DEFAULT
    check: Check | None = None


class RuleTable:
    """The rules of one element kind, compiled: read its attributes in one pass."""

    __slots__ = ("_defaults", "_index", "rules")

    def __init__(self, *rules: Rule) -> None:
        names = [rule.name for rule in rules]
        if len(set(names)) != len(names):
            raise ValueError(f"an attribute has two rules: {names}")
        self.rules = rules
        self._index = {rule.name: (i, rule.parse, rule.check) for i, rule in enumerate(rules)}
        self._defaults = [rule.default for rule in rules]

    @property
    def names(self) -> tuple[str, ...]:
        """The attributes this element has, in the rules' order."""
        return tuple(rule.name for rule in self.rules)

    def read(self, el: Element) -> list[Any]:
        """The value of each rule's attribute, in the rules' order; findings into `el`."""
        values = self._defaults.copy()
        # lxml gives str names and values (its stubs say str | bytes).
        items: list[tuple[str, str]] = el.node.items()  # type: ignore[assignment]
        if not items:
            return values
        index = self._index
        refused: list[tuple[int, str, TwilioCode | None, str]] = []
        unknown: list[str] = []
        for name, raw in items:
            entry = index.get(name)
            if entry is None:
                unknown.append(name)
                continue
            i, parse, check = entry
            if parse is None:
                values[i] = raw
                continue
            read = parse(raw)
            if read is None:
                refused.append((i, raw, None, ""))
                continue
            if check is not None:
                checked = check(read)
                if checked is not None:
                    read, code, detail = checked
                    refused.append((i, raw, code, detail))
            values[i] = read
        if refused or unknown:
            self._report(el, values, refused, unknown)
        return values

    def _report(
        self,
        el: Element,
        values: list[Any],
        refused: list[tuple[int, str, TwilioCode | None, str]],
        unknown: list[str],
    ) -> None:
        """The findings of one read, in the rules' order, then the unknown attributes."""
        for i, raw, code, detail in sorted(refused, key=lambda problem: problem[0]):
            rule = self.rules[i]
            if code is not None:  # a check's finding: the value is already replaced
                el.report(code, detail, rule.name)
                continue
            el.report(rule.code, f"{shown(raw)} {rule.problem}", rule.name)
            fallback = rule.fallback
            values[i] = rule.default if fallback is DEFAULT else raw if fallback is AS_WRITTEN \
                else fallback
        for name in unknown:
            el.report(
                codes.SCHEMA_VALIDATION_WARNING,
                f"attribute '{name}' is not allowed on <{el.name}>; ignored",
                name,
            )


def as_written(name: str, default: str | None = None) -> Rule:
    """An attribute taken as written (a name, a voice; or a valid one we do not act on)."""
    return Rule(name, default=default)


def value(
    name: str, parse: Callable[[str], Any], code: TwilioCode, default: Any, problem: str
) -> Rule:
    """The attribute as `parse` reads it; refused, `code` and `default`."""
    return Rule(name, parse, code, default, problem)


def integer(
    name: str,
    code: TwilioCode,
    default: int,
    minimum: int = 0,
    maximum: int = 999_999_999,
    check: Check | None = None,
) -> Rule:
    """A whole number from `minimum` to `maximum`."""
    return Rule(
        name, integer_parser(minimum, maximum), code, default,
        f"is not a whole number from {minimum} to {maximum}; using {default}", check=check,
    )


def boolean(name: str, code: TwilioCode, default: bool) -> Rule:
    """``true`` or ``false``, in any letter case."""
    return Rule(
        name, parse_bool, code, default, f"is not true or false; using {str(default).lower()}"
    )


def method(name: str, code: TwilioCode, default: str) -> Rule:
    """``GET`` or ``POST``, in any letter case (upper-cased)."""
    return Rule(name, parse_method, code, default, f"is not GET or POST; using {default}")


def choice(
    name: str,
    allowed: Collection[str],
    default: str,
    code: TwilioCode = codes.SCHEMA_VALIDATION_WARNING,
) -> Rule:
    """One of `allowed` (case-sensitive, as Twilio's schema). Where Twilio documents no code
    for another value, it is a 12200 warning and the default, as for other choices."""
    return Rule(
        name, {option: option for option in allowed}.get, code, default,
        f"is not one of {', '.join(sorted(allowed))}; using {default}",
    )


def url(name: str, code: TwilioCode) -> Rule:
    """A relative or http(s) URL as written; refused, None (or, under a fatal code, as written:
    the document will not run)."""
    return Rule(
        name, fetchable_url, code, None, "is not a relative or http(s) URL",
        fallback=AS_WRITTEN if code.fatal else None,
    )
