"""Smoke tests of the real-Asterisk harness: the lab boots, the test callers do what they say."""

from __future__ import annotations

import asyncio
import fcntl
import math
import os
import time
import wave
from array import array
from pathlib import Path
from typing import Any

import pytest
from asterisk_lab import (
    PJSIP_EXAMPLE,
    SPOOL_DIR,
    TEST_SOUNDS_DIR,
    AmiEventLog,
    AsteriskLab,
    AsteriskPbx,
    CallerScript,
    agi_command,
    decode_agi_env,
    generate_test_sounds,
    originate,
    render_pjsip_conf,
    wait_heard_closed,
)

TO = "+15557654321"
FROM = "+15551230001"


def read_wav(path: Path) -> tuple[int, int, int, array[int]]:
    """(rate, channels, sample width, samples) of a PCM WAV file."""
    with wave.open(str(path), "rb") as wav:
        samples = array("h", wav.readframes(wav.getnframes()))
        return wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), samples


def tone_power(samples: array[int], rate: int, hz: float) -> float:
    """Goertzel: the power of one frequency in the samples."""
    coeff = 2.0 * math.cos(2.0 * math.pi * hz / rate)
    prev, prev2 = 0.0, 0.0
    for sample in samples:
        prev, prev2 = sample + coeff * prev - prev2, prev
    return prev * prev + prev2 * prev2 - coeff * prev * prev2


def is_hangup_of(uniqueid: str) -> Any:
    return lambda event: event.get("Uniqueid") == uniqueid


# --- no Asterisk needed ---------------------------------------------------------------------


def test_generated_test_audio_is_8khz_mono_16bit(tmp_path: Path) -> None:
    generate_test_sounds(tmp_path)
    durations = {}
    for name in ("speech", "tone440-20s", "tone1000-20s"):
        rate, channels, width, samples = read_wav(tmp_path / f"{name}.wav")
        assert (rate, channels, width) == (8000, 1, 2), name
        durations[name] = len(samples) / rate
    assert 5.0 <= durations["speech"] <= 7.0
    assert durations["tone440-20s"] == pytest.approx(20.0)
    assert durations["tone1000-20s"] == pytest.approx(20.0)


def test_a_second_lab_on_a_locked_root_refuses_to_start(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/asterisk").touch()
    (root / ".provisioned").write_text("Asterisk 22\n")
    with (root / ".twiml-asterisk-lab.lock").open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write(f"{os.getpid()}\n")
        held.flush()
        lab = AsteriskLab(root, tmp_path / "work", lock_timeout=0.3)
        with pytest.raises(RuntimeError, match=f"another Asterisk lab \\(pid {os.getpid()}\\)"):
            lab.start()
    assert not (root / "etc/asterisk").exists()  # nothing was written into the locked root


# --- real Asterisk --------------------------------------------------------------------------


@pytest.mark.asterisk
async def test_ami_login_and_core_settings_show_asterisk_22(ami: Any) -> None:
    settings = await ami.send_action({"Action": "CoreSettings"})
    assert settings.get("Response") == "Success"
    assert str(settings.get("AsteriskVersion")).startswith("22.")


@pytest.mark.asterisk
async def test_originate_into_twiml_starts_async_agi_with_to_and_from(
    ami: Any, ami_events: AmiEventLog
) -> None:
    uniqueid = await originate(
        ami,
        CallerScript.SILENT,
        TO,
        from_number=FROM,
        caller_name="Smoke Caller",
        variables={"SILENCE_S": "20"},
    )
    start = await ami_events.wait_for(
        "AsyncAGIStart", lambda e: e.get("Uniqueid") == uniqueid, within=10.0
    )
    env = decode_agi_env(str(start.get("Env")))
    assert env["agi_request"] == "async"
    assert env["agi_arg_1"] == "twiml-pbx-adapter"
    assert env["agi_arg_2"] == TO
    assert env["agi_callerid"] == FROM
    assert env["agi_calleridname"] == "Smoke Caller"
    assert env["agi_context"] == "twiml"
    assert env["agi_extension"] == TO
    assert env["agi_uniqueid"] == uniqueid


@pytest.mark.asterisk
async def test_heard_records_what_the_adapter_side_plays_and_is_final_after_hangup(
    asterisk_lab: AsteriskPbx, ami: Any, ami_events: AmiEventLog
) -> None:
    heard = f"{SPOOL_DIR}/heard/smoke-direction.wav"
    uniqueid = await originate(
        ami,
        CallerScript.TONE440,  # the caller itself plays 440 Hz: it must NOT be in HEARD
        TO,
        from_number=FROM,
        caller_name="Tone Caller",
        variables={"HEARD": heard, "DURATION_S": "3"},
    )
    start = await ami_events.wait_for("AsyncAGIStart", lambda e: e.get("Uniqueid") == uniqueid)
    result = await agi_command(
        ami, ami_events, str(start.get("Channel")), f'STREAM FILE {TEST_SOUNDS_DIR}/tone1000-20s ""'
    )
    assert result.startswith("200 result=-1")  # cut short by the caller's hangup
    await ami_events.wait_for("Hangup", is_hangup_of(f"{uniqueid}-caller"))
    await wait_heard_closed(ami_events, heard)

    rate, channels, _, samples = read_wav(asterisk_lab.local_path(heard))
    assert (rate, channels) == (8000, 1)
    assert 2.0 <= len(samples) / rate <= 4.0
    assert tone_power(samples, rate, 1000.0) > 100 * tone_power(samples, rate, 440.0)


@pytest.mark.asterisk
async def test_speak_dtmf_caller_sends_its_digits_after_the_speech(
    ami: Any, ami_events: AmiEventLog
) -> None:
    began = time.monotonic()
    uniqueid = await originate(
        ami,
        CallerScript.SPEAK_DTMF,
        TO,
        from_number=FROM,
        caller_name="Dtmf Caller",
        variables={"LEAD_S": "0", "DIGITS": "42#", "SILENCE_S": "1"},
    )
    await ami_events.wait_for("Hangup", is_hangup_of(f"{uniqueid}-caller"), within=20.0)
    received = ami_events.matching(
        "DTMFEnd", lambda e: e.get("Uniqueid") == uniqueid and e.get("Direction") == "Received"
    )
    assert "".join(str(e.get("Digit")) for e in received) == "42#"
    assert time.monotonic() - began >= 6.0  # the 6.1 s of speech came first


@pytest.mark.asterisk
async def test_silent_caller_sends_real_silent_frames(ami: Any, ami_events: AmiEventLog) -> None:
    uniqueid = await originate(
        ami,
        CallerScript.SILENT,
        TO,
        from_number=FROM,
        caller_name="Silent Caller",
        variables={"SILENCE_S": "15"},
    )
    start = await ami_events.wait_for("AsyncAGIStart", lambda e: e.get("Uniqueid") == uniqueid)
    began = time.monotonic()
    # Silence detection only counts received frames: with Wait() this would run the full 12 s.
    result = await agi_command(
        ami,
        ami_events,
        str(start.get("Channel")),
        f'RECORD FILE {SPOOL_DIR}/smoke-silence wav "#" 12000 s=2',
    )
    elapsed = time.monotonic() - began
    assert "(timeout)" in result
    assert elapsed < 6.0


@pytest.mark.asterisk
async def test_tone_caller_hangs_up_after_duration(ami: Any, ami_events: AmiEventLog) -> None:
    uniqueid = await originate(
        ami,
        CallerScript.TONE440,
        TO,
        from_number=FROM,
        caller_name="Short Caller",
        variables={"DURATION_S": "2"},
    )
    up = time.monotonic()
    await ami_events.wait_for("Hangup", is_hangup_of(f"{uniqueid}-caller"), within=10.0)
    assert 1.5 <= time.monotonic() - up <= 4.0


@pytest.mark.asterisk
async def test_hangup_all_leaves_no_channel(
    asterisk_lab: AsteriskPbx, ami: Any, ami_events: AmiEventLog
) -> None:
    uniqueid = await originate(
        ami, CallerScript.SPEAK_LOOP, TO, from_number=FROM, caller_name="Loop", variables={}
    )
    await ami_events.wait_for("AsyncAGIStart", lambda e: e.get("Uniqueid") == uniqueid)
    await asyncio.to_thread(asterisk_lab.hangup_all)
    assert "0 active channels" in asterisk_lab.cli("core show channels count")
    await ami_events.wait_for("Hangup", is_hangup_of(uniqueid))


def test_the_labs_pjsip_conf_is_the_shipped_example_on_another_port() -> None:
    example = PJSIP_EXAMPLE.read_text()
    rendered = render_pjsip_conf(example, 47001)
    assert rendered == example.replace("bind = 127.0.0.1:5060", "bind = 127.0.0.1:47001")
    assert "context = twiml" in rendered and "dtmf_mode = rfc4733" in rendered
    with pytest.raises(ValueError):
        render_pjsip_conf(example.replace("bind = 127.0.0.1:5060", "bind = 0.0.0.0"), 47001)
