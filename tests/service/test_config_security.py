"""Configuration of the security features: ``[webhooks]`` target networks, the warning about a
config file others can read, and secrets kept out of reprs."""

from __future__ import annotations

import logging
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest

from adapter.callbacks.egress import PRIVATE_AND_LOOPBACK
from adapter.config import load_config
from adapter.errors import ConfigError

TOKEN = "tok-7d1f0c9a2b3e4f5a6b7c"
SECRET = "ami-9e8d7c6b5a"
BASE = f"""
[account]
sid = "AC{"0" * 32}"
auth_token = "{TOKEN}"
[asterisk]
username = "twiml"
secret = "{SECRET}"
[[numbers]]
number = "*"
voice_url = "https://app.example.com/voice"
"""
NO_SECRETS_ENV = {"TWIML_ADAPTER_ACCOUNT_AUTH_TOKEN": TOKEN,
                  "TWIML_ADAPTER_ASTERISK_SECRET": SECRET}


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "adapter.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


# --- [webhooks] ---------------------------------------------------------------------------------


def test_default_allows_loopback_and_private_only_besides_public(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE), environ={})
    assert config.webhooks.allow_networks == PRIVATE_AND_LOOPBACK
    assert config.webhooks.deny_networks == ()
    policy = config.webhooks.egress_policy()
    assert policy.refusal(ip_address("192.168.1.10")) is None
    assert policy.refusal(ip_address("169.254.169.254")) is not None


def test_networks_from_the_file(tmp_path: Path) -> None:
    text = BASE + '[webhooks]\nallow_networks = ["10.20.0.0/16", "2001:db8::/32"]\n' \
                  'deny_networks = ["10.20.99.0/24"]\n'
    config = load_config(write(tmp_path, text), environ={})
    assert config.webhooks.allow_networks == (ip_network("10.20.0.0/16"),
                                              ip_network("2001:db8::/32"))
    policy = config.webhooks.egress_policy()
    assert policy.refusal(ip_address("10.20.1.1")) is None
    assert policy.refusal(ip_address("10.20.99.1")) is not None
    assert policy.refusal(ip_address("127.0.0.1")) is not None  # loopback no longer listed


def test_environment_list_is_comma_separated_and_may_be_empty(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    config = load_config(path, environ={
        "TWIML_ADAPTER_WEBHOOKS_ALLOW_NETWORKS": " 10.0.0.0/8 , 127.0.0.1 ",
    })
    assert config.webhooks.allow_networks == (ip_network("10.0.0.0/8"),
                                              ip_network("127.0.0.1/32"))
    strict = load_config(path, environ={"TWIML_ADAPTER_WEBHOOKS_ALLOW_NETWORKS": ""})
    assert strict.webhooks.allow_networks == ()


@pytest.mark.parametrize(
    ("table", "fragment"),
    [('allow_networks = ["10.0.0.1/8"]', "host bits set"),
     ('allow_networks = ["10.0.0.0/33"]', "not a network"),
     ('allow_networks = "10.0.0.0/8"', "must be list"),
     ("deny_networks = [8]", "CIDR strings"),
     ('allow = ["10.0.0.0/8"]', "unknown key")],
)
def test_bad_network_lists_name_their_key(tmp_path: Path, table: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, BASE + f"[webhooks]\n{table}\n"), environ={})
    assert info.value.key.startswith("webhooks.")
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


# --- the file's permissions ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_secrets_in_a_file_others_can_read_give_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int
) -> None:
    path = write(tmp_path, BASE, mode)
    with caplog.at_level(logging.WARNING, logger="adapter.config.loading"):
        load_config(path, environ={})
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert str(path) in message and f"{mode:04o}" in message
    assert "account.auth_token, asterisk.secret" in message
    assert TOKEN not in message and SECRET not in message


@pytest.mark.parametrize(("mode", "text"), [(0o600, BASE), (0o400, BASE),
                                            (0o644, BASE.replace(f'auth_token = "{TOKEN}"', "")
                                             .replace(f'secret = "{SECRET}"', ""))])
def test_private_file_or_no_secret_in_it_gives_no_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int, text: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="adapter.config.loading"):
        load_config(write(tmp_path, text, mode), environ=NO_SECRETS_ENV)
    assert caplog.records == []


def test_secrets_are_not_in_the_config_repr(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE), environ={})
    assert config.auth_token == TOKEN
    assert config.asterisk is not None and config.asterisk.secret == SECRET
    assert TOKEN not in repr(config) and SECRET not in repr(config)
