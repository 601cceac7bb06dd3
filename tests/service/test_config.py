"""Configuration: file + environment, and one clear line for each mistake (exit status 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from adapter.config import load_config
from adapter.errors import ConfigError

SID = "AC" + "0" * 32
GOOD = f"""
[account]
sid = "{SID}"
auth_token = "0123456789abcdef0123456789abcdef"
[http]
listen = "127.0.0.1:9000"
public_base_url = "https://adapter.example.com/"
[storage]
data_dir = "/tmp/adapter-data"
[asterisk]
username = "twiml"
secret = "s3cret"
spool_dir = "/var/spool/asterisk/twiml"
spool_dir_local = "/srv/root/var/spool/asterisk/twiml"
[[numbers]]
number = "+15551230000"
voice_url = "https://app.example.com/voice"
[[numbers]]
number = "*"
voice_url = "https://app.example.com/any"
voice_method = "get"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "adapter.toml"
    path.write_text(text)
    return path


def test_file_values_and_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), environ={})
    assert config.account_sid == SID
    assert config.http.listen_port == 9000
    assert config.http.public_base_url == "https://adapter.example.com"
    assert config.asterisk.port == 5038
    assert config.database_url == "sqlite+aiosqlite:////tmp/adapter-data/adapter.db"
    assert config.route_for("+15551230000").voice_url == "https://app.example.com/voice"
    fallback = config.route_for("+19999")
    assert fallback is not None and fallback.voice_method == "GET"
    assert config.recording_url("RE" + "1" * 32) == (
        f"https://adapter.example.com/2010-04-01/Accounts/{SID}/Recordings/RE{'1' * 32}"
    )


def test_environment_overrides_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), environ={
        "TWIML_ADAPTER_ASTERISK_PORT": "15038",
        "TWIML_ADAPTER_ASTERISK_SECRET": "from-env",
        "TWIML_ADAPTER_HTTP_PUBLIC_MEDIA": "true",
        "TWIML_ADAPTER_NUMBERS": '[{"number": "100", "voice_url": "http://127.0.0.1:1/v"}]',
    })
    assert config.asterisk.port == 15038
    assert config.asterisk.secret == "from-env"
    assert config.http.public_media is True
    assert config.route_for("100") is not None and config.route_for("+15551230000") is None


def test_environment_alone_is_enough() -> None:
    config = load_config(None, environ={
        "TWIML_ADAPTER_ACCOUNT_SID": SID,
        "TWIML_ADAPTER_ACCOUNT_AUTH_TOKEN": "x" * 32,
        "TWIML_ADAPTER_ASTERISK_USERNAME": "u",
        "TWIML_ADAPTER_ASTERISK_SECRET": "s",
        "TWIML_ADAPTER_NUMBERS": '[{"number": "*", "voice_url": "http://app/v"}]',
    })
    assert config.asterisk.username == "u"


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda t: t.replace('username = "twiml"\n', ""), "asterisk.username"),
        (lambda t: t.replace(SID, "AC123"), "account.sid"),
        (lambda t: t.replace('listen = "127.0.0.1:9000"', 'listen = "nowhere"'), "http.listen"),
        (lambda t: t.replace("[asterisk]", '[asterisk]\nport = "x"'), "asterisk.port"),
        (lambda t: t.replace("[asterisk]", "[asterisk]\nprot = 1"), "asterisk.prot"),
        (lambda t: t.replace('voice_method = "get"', 'voice_method = "PUT"'),
         "numbers[1].voice_method"),
        (lambda t: t.replace("https://app.example.com/voice", "ftp://x"), "numbers[0].voice_url"),
        (lambda t: t.replace('data_dir = "/tmp/adapter-data"', 'data_dir = "rel"'),
         "storage.data_dir"),
    ],
)
def test_each_mistake_names_its_key(tmp_path: Path, edit, key: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, edit(GOOD)), environ={})
    assert info.value.key == key


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, GOOD), environ={"TWIML_ADAPTER_ASTERISK_PORT": "abc"})
    assert info.value.key == "TWIML_ADAPTER_ASTERISK_PORT"


def test_cli_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("[asterisk]", '[asterisk]\nport = 99999'))
    proc = subprocess.run(
        [sys.executable, "-m", "adapter.cli", "serve", "--config", str(path)],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "twiml-adapter: config error: asterisk.port: must be 1-65535, got 99999"
    ]


def test_freeswitch_needs_only_its_own_section() -> None:
    config = load_config(None, environ={
        "TWIML_ADAPTER_ACCOUNT_SID": SID,
        "TWIML_ADAPTER_ACCOUNT_AUTH_TOKEN": "x" * 32,
        "TWIML_ADAPTER_PBX_TYPE": "freeswitch",
        "TWIML_ADAPTER_FREESWITCH_ESL_PASSWORD": "ClueCon",
        "TWIML_ADAPTER_NUMBERS": '[{"number": "*", "voice_url": "http://app/v"}]',
    })
    assert config.pbx == "freeswitch" and config.asterisk is None
    assert config.freeswitch is not None and config.freeswitch.esl_port == 8021
    assert str(config.spool_dir_local) == "/var/spool/freeswitch/twiml"
    with pytest.raises(ConfigError) as info:
        load_config(None, environ={
            "TWIML_ADAPTER_ACCOUNT_SID": SID, "TWIML_ADAPTER_ACCOUNT_AUTH_TOKEN": "x" * 32,
            "TWIML_ADAPTER_PBX_TYPE": "freeswitch",
            "TWIML_ADAPTER_NUMBERS": '[{"number": "*", "voice_url": "http://app/v"}]',
        })
    assert info.value.key == "freeswitch.esl_password"
    with pytest.raises(ConfigError) as info:
        load_config(None, environ={"TWIML_ADAPTER_PBX_TYPE": "yate",
                                   "TWIML_ADAPTER_ACCOUNT_SID": SID,
                                   "TWIML_ADAPTER_ACCOUNT_AUTH_TOKEN": "x" * 32})
    assert info.value.key == "pbx.type"


def test_transcription_section(tmp_path: Path) -> None:
    default = load_config(write(tmp_path, GOOD), environ={}).transcription
    assert (default.engine, default.model, default.workers, default.cpu_threads) == (
        "local", "", 1, 1)
    config = load_config(write(tmp_path, GOOD + """
[transcription]
engine = "openai"
url = "http://10.0.0.5:8000/"
model = "large-v3"
workers = 2
timeout = 30
"""), environ={"TWIML_ADAPTER_TRANSCRIPTION_API_KEY": "sk-site"}).transcription
    assert (config.engine, config.url, config.model, config.workers, config.timeout) == (
        "openai", "http://10.0.0.5:8000", "large-v3", 2, 30.0)
    assert config.api_key == "sk-site" and "sk-site" not in repr(config)


@pytest.mark.parametrize(("section", "key"), [
    ('engine = "cloud"', "transcription.engine"),
    ('engine = "openai"', "transcription.url"),
    ("workers = 0", "transcription.workers"),
])
def test_transcription_mistakes_name_their_key(tmp_path: Path, section: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, GOOD + f"\n[transcription]\n{section}\n"), environ={})
    assert caught.value.key == key
