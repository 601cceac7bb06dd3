"""The TwiML app side of the shared `<Gather>` suites (tests/interpreter/test_gather*.py): the
routes around a `<Gather>` document, and the signature check every request gets."""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse
from twiml_app import ReceivedRequest, TwimlApp


def serve_menu(app: TwimlApp, response: VoiceResponse) -> None:
    """/voice: `response` (a <Gather>, then a <Redirect> to /next for no input); the action /g
    redirects to /after, so the test sees its TwiML run."""
    response.redirect("/next")
    app.answer("/voice", response)
    after = VoiceResponse()
    after.redirect("/after")
    app.answer("/g", after)
    app.answer("/after", VoiceResponse())
    app.answer("/next", VoiceResponse())


def signed(request: ReceivedRequest) -> ReceivedRequest:
    assert request.signature_valid, request
    return request
