"""The endpoint a PBX rings for a `<Dial>` target or a REST call's ``To``, for both PBXs.

A target is ``("number", "+1555…")`` or ``("sip", "sip:user@host")``; the configured template
(``dial_number`` with ``{number}``, ``dial_sip`` with ``{uri}``) gets the checked address, and the
whole endpoint is then checked by the PBX's own escaping (`endpoint`), so neither a template nor
a TwiML value can add a target, an option or a variable.
"""

from __future__ import annotations

from collections.abc import Callable

from adapter.addresses import PHONE_NUMBER, SIP_URI

__all__ = ["dial_target"]


def dial_target(kind: str, address: str, *, number_template: str, sip_template: str,
                endpoint: Callable[[str], str], unsafe: Callable[[str], Exception]) -> str:
    """One endpoint: the template with the checked number or SIP URI in it, checked whole by
    `endpoint`; an address that is neither raises `unsafe(message)` (the PBX's UnsafeValue)."""
    if kind == "number" and PHONE_NUMBER.fullmatch(address):
        return endpoint(number_template.replace("{number}", address))
    if kind == "sip" and SIP_URI.fullmatch(address):
        return endpoint(sip_template.replace("{uri}", address))
    raise unsafe(f"Dial target {kind} {address!r} is not a plain number or sip:user@host")
