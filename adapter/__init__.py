"""twiml-pbx-adapter: Twilio TwiML voice support for Asterisk and FreeSWITCH."""

__version__ = "0.1.0"
__all__ = ["__version__"]
