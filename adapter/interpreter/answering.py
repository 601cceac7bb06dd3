"""When an incoming call is answered: Twilio's rule, in one place (sources in
docs/twilio-reference-notes.md, "When Twilio answers a call").

Twilio answers before it runs the first verb, except:

- ``<Redirect>``: the call keeps ringing while the next document is fetched (CallStatus stays
  ``ringing``), and that document's first verb decides;
- a ``<Pause>`` before anything else (only ``<Redirect>`` may come first): the caller hears
  ringing for its length, then the call is answered (`CallSession` answers after it);
- ``<Dial answerOnBridge="true">``: the PBX's bridge answers when the callee does;
- ``<Reject>``: never answered (it ends the call busy or no-answer, `CallSession._reject`).

A REST-originated call is answered by its callee before any TwiML runs: nothing to do here.
"""

from __future__ import annotations

from adapter.twiml import Dial, Pause, Redirect, Reject, Verb

__all__ = ["answers_before"]


def answers_before(verb: Verb, *, leading: bool) -> bool:
    """Whether a call not answered yet is answered before `verb` runs. `leading`: no verb but
    ``<Redirect>`` has run on this call yet."""
    if isinstance(verb, Redirect | Reject):
        return False
    if isinstance(verb, Pause):
        return not leading
    if isinstance(verb, Dial):
        return not verb.answer_on_bridge
    return True
