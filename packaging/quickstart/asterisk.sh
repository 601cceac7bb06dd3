#!/usr/bin/env bash
# The commands of docs/quickstart-asterisk.md, in order (tests/service/test_quickstart.py checks
# that the document's code blocks are exactly these steps, and runs this script against the test
# lab's Asterisk 22). Run as root from the checkout. Each `# ---` line starts one step.
set -euo pipefail

# --- settings
SRC=$PWD                                    # this checkout
ASTERISK_ETC=${ASTERISK_ETC:-/etc/asterisk}
ASTERISK_RX=${ASTERISK_RX:-asterisk -rx}    # how to talk to the running Asterisk
AMI_PORT=${AMI_PORT:-5038}
AMI_SECRET=${AMI_SECRET:-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}
SPOOL=${SPOOL:-/var/spool/asterisk/twiml}   # the shared folder, as this machine sees it
ACCOUNT_SID=${ACCOUNT_SID:?your Account SID, AC + 32 hex digits}
AUTH_TOKEN=${AUTH_TOKEN:?your auth token}
VOICE_URL=${VOICE_URL:?your TwiML app, e.g. https://app.example.com/voice}
HTTP_LISTEN=${HTTP_LISTEN:-127.0.0.1:8080}
SIP_TRUNK=${SIP_TRUNK:-127.0.0.1:5060}      # pjsip_twiml.conf's transport
PREFIX=${PREFIX:-/opt/twiml-adapter}
ETC=${TWIML_ETC:-/etc/twiml-adapter}
DATA=${TWIML_DATA:-/var/lib/twiml-adapter}
export PBX_USER=${PBX_USER:-asterisk} TWIML_SPOOL=$SPOOL TWIML_ETC=$ETC TWIML_DATA=$DATA

# --- packages
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
  python3-venv ffmpeg espeak-ng sip-tester curl

# --- asterisk
install -d "$ASTERISK_ETC/twiml"
install -m 0644 "$SRC"/dialplan/asterisk/extensions_twiml.conf \
  "$SRC"/dialplan/asterisk/pjsip_twiml.conf "$ASTERISK_ETC/twiml/"
grep -qF 'twiml/extensions_twiml.conf' "$ASTERISK_ETC/extensions.conf" \
  || echo '#include "twiml/extensions_twiml.conf"' >>"$ASTERISK_ETC/extensions.conf"
grep -q '^\[transport-trunk\]' "$ASTERISK_ETC/pjsip.conf" \
  || echo '#include "twiml/pjsip_twiml.conf"' >>"$ASTERISK_ETC/pjsip.conf"
grep -q '^\[twiml\]' "$ASTERISK_ETC/manager.conf" || cat >>"$ASTERISK_ETC/manager.conf" <<CONF

[twiml]
secret = $AMI_SECRET
deny = 0.0.0.0/0.0.0.0
permit = 127.0.0.1/255.255.255.255
read = system,call,agi,dtmf
write = system,call,agi,originate
CONF
$ASTERISK_RX 'manager reload'
$ASTERISK_RX 'dialplan reload'
$ASTERISK_RX 'module reload res_pjsip.so'

# --- user and spool
"$SRC"/packaging/install.sh asterisk

# --- venv
/usr/bin/python3 -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install -q "$SRC"

# --- config
sed -i -e "s|^sid = .*|sid = \"$ACCOUNT_SID\"|" \
  -e "s|^auth_token = .*|auth_token = \"$AUTH_TOKEN\"|" \
  -e "s|^listen = \"127.0.0.1:8080\"|listen = \"$HTTP_LISTEN\"|" \
  -e "s|^public_base_url = .*|public_base_url = \"http://$HTTP_LISTEN\"|" \
  -e "s|^data_dir = .*|data_dir = \"$DATA\"|" \
  -e "s|^port = 5038|port = $AMI_PORT|" \
  -e "s|^secret = .*|secret = \"$AMI_SECRET\"|" \
  -e "s|^spool_dir_local = \"/var/spool/asterisk/twiml\"|spool_dir_local = \"$SPOOL\"|" \
  -e "s|^voice_url = .*|voice_url = \"$VOICE_URL\"|" "$ETC/adapter.toml"

# --- start
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable --now twiml-adapter
else  # no systemd (a container, CI): the unit's command, as its user, with its umask
  (umask 0007 && exec setpriv --reuid=twiml-adapter --regid=twiml-adapter --init-groups -- \
    "$PREFIX/venv/bin/twiml-adapter" serve --config "$ETC/adapter.toml") \
    >>"$DATA/adapter.log" 2>&1 &
  echo $! >"$DATA/adapter.pid"
fi
for _ in $(seq 120); do
  curl -fsS "http://$HTTP_LISTEN/health" && break
  sleep 1
done

# --- call
sipp -sf "$SRC/packaging/quickstart/caller.xml" -s 15557650000 "$SIP_TRUNK" -m 1 \
  -i 127.0.0.1 -p "${SIPP_PORT:-5090}" -mp "${SIPP_MEDIA_PORT:-6000}" -timeout 60s -nostdin \
  -trace_err -error_file "$DATA/sipp-errors.log" >"$DATA/sipp.log"
recordings="http://$HTTP_LISTEN/2010-04-01/Accounts/$ACCOUNT_SID/Recordings"
for _ in $(seq 60); do
  sid=$(curl -fsS -u "$ACCOUNT_SID:$AUTH_TOKEN" "$recordings.json?PageSize=1" \
    | /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin)["recordings"]; print(r[0]["sid"] if r and r[0]["status"] == "completed" else "")')
  [ -n "$sid" ] && break
  sleep 1
done
curl -fsS -u "$ACCOUNT_SID:$AUTH_TOKEN" -o "$DATA/first-call.wav" "$recordings/$sid.wav"
echo "recorded: $recordings/$sid.wav (saved as $DATA/first-call.wav)"
