"""Configuration: one TOML file, every key also settable by an environment variable.

The variable for ``[section] key`` is ``TWIML_ADAPTER_<SECTION>_<KEY>`` (upper case), e.g.
``TWIML_ADAPTER_ASTERISK_SECRET``. The phone-number table is ``TWIML_ADAPTER_NUMBERS``, a JSON list
of tables with the same keys as ``[[numbers]]``. Environment variables win over the file; a list
(``webhooks.allow_networks``) is comma-separated there. See docs/configuration.md for every key.

A file holding a secret (``account.auth_token``, ``asterisk.secret``,
``freeswitch.esl_password``, ``transcription.api_key``) that group or others may read or write
gets one WARNING at load.

Modules: `sections` (the typed sections), `loading` (file and environment, `load_config`),
`environment` (how a key is spelled there), `building` (the checks and defaults).
"""

from adapter.config.loading import load_config
from adapter.config.sections import (
    AsteriskConfig,
    Config,
    FreeSwitchConfig,
    HttpConfig,
    NumberRoute,
    PbxConfig,
    TranscriptionConfig,
    WebhooksConfig,
)

__all__ = [
    "AsteriskConfig",
    "Config",
    "FreeSwitchConfig",
    "HttpConfig",
    "NumberRoute",
    "PbxConfig",
    "TranscriptionConfig",
    "WebhooksConfig",
    "load_config",
]
