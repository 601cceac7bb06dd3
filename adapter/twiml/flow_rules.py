"""Validation of the verbs that end or move the call: ``<Hangup>``, ``<Reject>``, ``<Redirect>``."""

from __future__ import annotations

from adapter.twiml import codes
from adapter.twiml.element import Element
from adapter.twiml.rule_table import RuleTable, choice, method
from adapter.twiml.verbs import Hangup, Redirect, Reject

__all__ = [
    "REDIRECT_DEFAULT_METHOD",
    "REJECT_DEFAULT_REASON",
    "REJECT_REASONS",
    "hangup_verb",
    "redirect_verb",
    "reject_verb",
]

REDIRECT_DEFAULT_METHOD = "POST"
REJECT_REASONS = frozenset({"rejected", "busy"})
REJECT_DEFAULT_REASON = "rejected"


HANGUP = RuleTable()
REJECT = RuleTable(choice("reason", REJECT_REASONS, REJECT_DEFAULT_REASON))
REDIRECT = RuleTable(method("method", codes.REDIRECT_INVALID_METHOD, REDIRECT_DEFAULT_METHOD))


def hangup_verb(el: Element) -> Hangup:
    """``<Hangup>``: no attributes, no content."""
    HANGUP.read(el)
    el.report_content()
    return Hangup()


def reject_verb(el: Element) -> Reject:
    """``<Reject reason>``; Twilio documents no code for another reason (12200, the default)."""
    (reason,) = REJECT.read(el)
    el.report_content()
    return Reject(reason=reason)


def redirect_verb(el: Element) -> Redirect:
    """``<Redirect>``: the URL as its text (required)."""
    (method_,) = REDIRECT.read(el)
    url = el.text_url(required=True)
    return Redirect(url=url or "", method=method_)
