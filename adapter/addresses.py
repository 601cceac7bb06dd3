"""The shapes of phone numbers, SIP URIs and caller IDs the adapter accepts anywhere: in TwiML
(`<Dial>`, `<Number>`, `<Sip>`, ``callerId``), in REST parameters (``To``, ``From``) and in the
commands the PBX drivers build. One definition, so a value TwiML or the API let through is
exactly what the drivers will dial, and no pattern admits a separator (``,`` ``|`` ``&``),
variables, spaces, quotes or headers."""

from __future__ import annotations

import re

__all__ = ["CALLER_ID", "PHONE_NUMBER", "SIP_URI", "SIP_URI_SCHEME_OPTIONAL"]

PHONE_NUMBER = re.compile(r"\+?[0-9*#]{1,20}")
# user@host[:port][;param=value]...: no headers (?x-h=v), spaces, quotes or commas.
_SIP_ADDRESS = (r"[A-Za-z0-9._~+-]{1,64}@[A-Za-z0-9.-]{1,190}(?::[0-9]{1,5})?"
                r"(?:;[A-Za-z0-9_.-]{1,32}=[A-Za-z0-9_.-]{1,64})*")
SIP_URI = re.compile(rf"sips?:{_SIP_ADDRESS}")
# <Sip> text: Twilio's own examples leave out the scheme.
SIP_URI_SCHEME_OPTIONAL = re.compile(rf"(?:sips?:)?{_SIP_ADDRESS}")
CALLER_ID = re.compile(r"[A-Za-z0-9+_.-]{1,64}")
