"""What validation found in a TwiML document, and the error raised when it cannot run."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from adapter.errors import TwilioError
from adapter.twiml.codes import TwilioCode

__all__ = ["Finding", "TwimlError", "finding", "shown"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem in a document, with Twilio's code; `fatal` ones stop the whole document."""

    code: int
    """Twilio's error or warning number (`adapter.twiml.codes`)."""
    message: str
    """Twilio's title for the code, then what was wrong here."""
    fatal: bool
    """True for an ERROR-level code: the document must not run."""
    line: int | None = None
    """The line of the document it is about, when known."""
    verb: str | None = None
    """The element it is about (``Record``, ``Number``...; an unsupported verb's name), if any."""
    attribute: str | None = None
    """The attribute of that element it is about, if any."""

    def __str__(self) -> str:
        """E.g. ``line 3: <Record maxLength>: 13612 Record: Invalid maxLength value: ...``."""
        parts: list[str] = []
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.verb is not None:
            parts.append(f"<{self.verb} {self.attribute}>" if self.attribute else f"<{self.verb}>")
        parts.append(f"{self.code} {self.message}")
        return ": ".join(parts)


def finding(
    code: TwilioCode,
    detail: str,
    *,
    line: int | None = None,
    verb: str | None = None,
    attribute: str | None = None,
) -> Finding:
    """A Finding for `code`: Twilio's title followed by `detail`; fatal when the level is ERROR."""
    return Finding(
        code=code.number,
        message=f"{code.title}: {detail}",
        fatal=code.fatal,
        line=line,
        verb=verb,
        attribute=attribute,
    )


def shown(raw: str, limit: int = 60) -> str:
    """`raw` quoted for a message, shortened when long."""
    return repr(raw if len(raw) <= limit else raw[:limit] + "...")


class TwimlError(TwilioError):
    """A document that must not run. `code`/`message` come from its first fatal finding."""

    def __init__(self, findings: Iterable[Finding]) -> None:
        all_findings = tuple(findings)
        if not all_findings:
            raise ValueError("TwimlError needs at least one finding")
        first = next((f for f in all_findings if f.fatal), all_findings[0])
        super().__init__(first.code, first.message)
        self.findings = all_findings
