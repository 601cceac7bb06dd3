"""Validation of a parsed TwiML tree: the document rules, and which rules each verb gets.

`validate_tree` turns the ``<Response>`` element into typed verbs plus findings. A WARNING-level
finding means what Twilio does for it: the offending value is replaced by its documented
default (or the element is skipped) and the document goes on. An ERROR-level finding is fatal
for the whole document, which `adapter.twiml.parse` enforces before any verb runs.

Each verb family has its own module of rules: `recording_rules` (``<Record>``, ``<Start>``,
``<Stop>``), `dial_rules`, `prompt_rules` (``<Say>``, ``<Play>``, ``<Pause>``), `gather_rules`
and `flow_rules` (``<Hangup>``, ``<Reject>``, ``<Redirect>``), all reading attributes through
the element's compiled `rule_table.RuleTable`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from lxml import etree

from adapter.twiml import codes
from adapter.twiml.dial_rules import dial_verb
from adapter.twiml.element import Element, source_line, unsupported
from adapter.twiml.findings import Finding, finding
from adapter.twiml.flow_rules import hangup_verb, redirect_verb, reject_verb
from adapter.twiml.gather_rules import gather_verb
from adapter.twiml.prompt_rules import pause_verb, play_verb, say_verb
from adapter.twiml.recording_rules import record_verb, start_or_stop_verbs
from adapter.twiml.rule_table import RuleTable
from adapter.twiml.verbs import Verb

__all__ = ["IMPLEMENTED_VERBS", "UNSUPPORTED_VERBS", "validate_tree"]

# The rules for each verb this adapter implements: the verb it becomes (None: skipped).
_ONE_VERB: Mapping[str, Callable[[Element], Verb | None]] = {
    "Record": record_verb,
    "Say": say_verb,
    "Play": play_verb,
    "Pause": pause_verb,
    "Hangup": hangup_verb,
    "Redirect": redirect_verb,
    "Reject": reject_verb,
    "Dial": dial_verb,
    "Gather": gather_verb,
}
# ... and for the verbs that hold several nouns, each becoming a verb.
_SEVERAL_VERBS: Mapping[str, Callable[[Element], list[Verb]]] = {
    "Start": start_or_stop_verbs,
    "Stop": start_or_stop_verbs,
}
IMPLEMENTED_VERBS = frozenset({*_ONE_VERB, *_SEVERAL_VERBS})
# Twilio verbs (and nouns people put at the top level) that parse to Unsupported.
UNSUPPORTED_VERBS = frozenset(
    {
        "Connect",
        "Echo",
        "Enqueue",
        "Leave",
        "Message",
        "Pay",
        "Prompt",
        "Queue",
        "Refer",
        "Sms",
    }
)


RESPONSE = RuleTable()  # <Response> has no attributes


def _verbs(el: Element) -> list[Verb]:
    """The typed verbs for a child of <Response> that is not one of `_ONE_VERB` (none when it
    is skipped; several for a <Start> holding several nouns)."""
    several = _SEVERAL_VERBS.get(el.name)
    if several is not None:
        return several(el)
    if el.name in UNSUPPORTED_VERBS:
        return [unsupported(el.name, el.node, el.node)]
    el.report(
        codes.SCHEMA_VALIDATION_WARNING,
        f"<{el.name}> is not a TwiML verb (names are case-sensitive); skipped",
    )
    return []


def validate_tree(root: etree._Element) -> tuple[tuple[Verb, ...], list[Finding]]:
    """The verbs of a parsed document and every finding about it, fatal ones included.

    The root must be <Response> (12102, fatal). Text directly inside <Response>, attributes on
    it and unknown elements are 12200 warnings and are ignored.
    """
    findings: list[Finding] = []
    if root.tag != "Response":
        findings.append(
            finding(
                codes.ROOT_ELEMENT_NOT_RESPONSE,
                f"the root element is <{root.tag}>",
                line=source_line(root),
            )
        )
        return (), findings
    response = Element(root, findings, "Response")
    RESPONSE.read(response)
    texty, children = response.text_and_children()
    if texty:
        response.report(
            codes.SCHEMA_VALIDATION_WARNING, "text directly inside <Response> is ignored"
        )
    verbs: list[Verb] = []
    one_verb = _ONE_VERB.get
    for child in children:
        name: str = child.tag  # an element's tag is a str (comments and PIs are removed)
        el = Element(child, findings, name)
        one = one_verb(name)
        if one is not None:
            verb = one(el)
            if verb is not None:
                verbs.append(verb)
        else:
            verbs.extend(_verbs(el))
    return tuple(verbs), findings
