"""The typed configuration: one frozen dataclass per section of the file, and `Config` over them.

Only `adapter.config.building` makes these, from checked values; everything else reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from adapter.callbacks.egress import PRIVATE_AND_LOOPBACK, EgressPolicy, IPNetwork

__all__ = [
    "AsteriskConfig", "Config", "FreeSwitchConfig", "HttpConfig", "NumberRoute", "PbxConfig",
    "TranscriptionConfig", "WebhooksConfig",
]


@dataclass(frozen=True, slots=True)
class NumberRoute:
    """A phone number's Voice URL, as configured on a Twilio number. ``*`` matches any number."""

    number: str
    voice_url: str
    voice_method: str = "POST"


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """``[http]``: where the REST API listens, and the base of the URLs it hands out."""

    listen_host: str
    listen_port: int
    public_base_url: str
    public_media: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class PbxConfig:
    """What both PBX sections have: the shared spool folder, as the PBX writes it and as the
    adapter reads it, and the dial strings for ``<Number>`` and ``<Sip>`` targets."""

    spool_dir: PurePosixPath
    spool_dir_local: Path
    dial_number: str
    dial_sip: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AsteriskConfig(PbxConfig):
    """``[asterisk]``: the AMI login."""

    host: str
    port: int
    username: str
    secret: str = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class FreeSwitchConfig(PbxConfig):
    """``[freeswitch]``: the outbound socket the adapter listens on, and the ESL login."""

    listen_host: str
    listen_port: int
    esl_host: str
    esl_port: int
    esl_password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class WebhooksConfig:
    """Which networks webhook and callback requests may reach (adapter/callbacks/egress.py)."""

    allow_networks: tuple[IPNetwork, ...] = PRIVATE_AND_LOOPBACK
    deny_networks: tuple[IPNetwork, ...] = ()

    def egress_policy(self) -> EgressPolicy:
        return EgressPolicy(allow=self.allow_networks, deny=self.deny_networks)


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptionConfig:
    """``[transcription]``: which engine transcribes `<Record transcribe>` (docs/transcription.md).

    ``local``: faster-whisper in this process, `model` a CTranslate2 model folder or a model
    name already in the local cache ("" is the packaged ``tiny.en``), `cpu_threads` per worker.
    ``openai``: a server the site runs that speaks OpenAI's ``/v1/audio/transcriptions``, at
    `url`, with `model` and the optional `api_key`, each request bounded by `timeout` seconds.
    At most `workers` transcriptions run at once, whatever the engine."""

    engine: str = "local"  # "local" | "openai"
    model: str = ""
    url: str = ""
    api_key: str = field(default="", repr=False)
    workers: int = 1
    cpu_threads: int = 1
    timeout: float = 60.0


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration; exactly one of `asterisk` and `freeswitch` is set, per `pbx`."""

    account_sid: str
    auth_token: str = field(repr=False)
    http: HttpConfig
    data_dir: Path
    database_url: str
    pbx: str  # "asterisk" | "freeswitch"
    asterisk: AsteriskConfig | None
    freeswitch: FreeSwitchConfig | None
    numbers: tuple[NumberRoute, ...]
    tts_voice: str
    log_level: str
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)
    log_format: str = "text"  # "text" | "json" (adapter/log_context.py)
    transcription: TranscriptionConfig = field(default_factory=TranscriptionConfig)

    @property
    def spool_dir_local(self) -> Path:
        """The shared spool of the configured PBX, as the adapter sees it."""
        pbx = self.asterisk if self.pbx == "asterisk" else self.freeswitch
        assert pbx is not None
        return pbx.spool_dir_local

    def route_for(self, to: str) -> NumberRoute | None:
        """The number's route, else the ``*`` route, else None."""
        for route in self.numbers:
            if route.number == to:
                return route
        for route in self.numbers:
            if route.number == "*":
                return route
        return None

    def recording_url(self, recording_sid: str) -> str:
        return f"{self.account_url()}/Recordings/{recording_sid}"

    def transcription_url(self, transcription_sid: str) -> str:
        """The TranscriptionUrl of a transcription (Twilio's: under the account)."""
        return f"{self.account_url()}/Transcriptions/{transcription_sid}"

    def account_url(self) -> str:
        """The REST API's URL of the configured account."""
        return f"{self.http.public_base_url}/2010-04-01/Accounts/{self.account_sid}"
