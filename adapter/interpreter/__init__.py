"""The TwiML interpreter: one `CallSession` per call."""

from adapter.interpreter.context import SessionContext
from adapter.interpreter.session import CallSession

__all__ = ["CallSession", "SessionContext"]
