#!/usr/bin/env bash
# The commands of docs/quickstart-freeswitch.md, in order (tests/service/test_quickstart.py checks
# that the document's code blocks are exactly these steps, and runs this script against the test
# lab's FreeSWITCH 1.10.12). Run as root from the checkout. Each `# ---` line starts one step.
set -euo pipefail

# --- settings
SRC=$PWD                                    # this checkout
FS_CONF=${FS_CONF:-/etc/freeswitch}
ESL_PORT=${ESL_PORT:-8021}
ESL_PASSWORD=${ESL_PASSWORD:?the event socket password of event_socket.conf.xml}
FS_CLI=${FS_CLI:-fs_cli -P $ESL_PORT -p $ESL_PASSWORD -x}
ADAPTER_SOCKET=${ADAPTER_SOCKET:-127.0.0.1:8084}  # where FreeSWITCH hands calls to the adapter
SPOOL=${SPOOL:-/var/spool/freeswitch/twiml} # the shared folder (FreeSWITCH on this machine)
ACCOUNT_SID=${ACCOUNT_SID:?your Account SID, AC + 32 hex digits}
AUTH_TOKEN=${AUTH_TOKEN:?your auth token}
VOICE_URL=${VOICE_URL:?your TwiML app, e.g. https://app.example.com/voice}
HTTP_LISTEN=${HTTP_LISTEN:-127.0.0.1:8080}
SIP_TRUNK=${SIP_TRUNK:-127.0.0.1:5080}      # a Sofia profile whose context is twiml
PREFIX=${PREFIX:-/opt/twiml-adapter}
ETC=${TWIML_ETC:-/etc/twiml-adapter}
DATA=${TWIML_DATA:-/var/lib/twiml-adapter}
export PBX_USER=${PBX_USER:-freeswitch} TWIML_SPOOL=$SPOOL TWIML_ETC=$ETC TWIML_DATA=$DATA

# --- packages
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
  python3-venv ffmpeg espeak-ng sip-tester curl

# --- freeswitch
install -m 0644 "$SRC/dialplan/freeswitch/twiml.xml" "$FS_CONF/dialplan/twiml.xml"
sed -i "s|twiml_adapter_socket=[^\"]*|twiml_adapter_socket=$ADAPTER_SOCKET|" \
  "$FS_CONF/dialplan/twiml.xml"
$FS_CLI reloadxml

# --- user and spool
"$SRC"/packaging/install.sh freeswitch

# --- venv
/usr/bin/python3 -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install -q "$SRC"

# --- config
sed -i -e "s|^sid = .*|sid = \"$ACCOUNT_SID\"|" \
  -e "s|^auth_token = .*|auth_token = \"$AUTH_TOKEN\"|" \
  -e "s|^listen = \"127.0.0.1:8080\"|listen = \"$HTTP_LISTEN\"|" \
  -e "s|^public_base_url = .*|public_base_url = \"http://$HTTP_LISTEN\"|" \
  -e "s|^data_dir = .*|data_dir = \"$DATA\"|" \
  -e "s|^listen = \"127.0.0.1:8084\"|listen = \"$ADAPTER_SOCKET\"|" \
  -e "s|^esl_port = 8021|esl_port = $ESL_PORT|" \
  -e "s|^esl_password = .*|esl_password = \"$ESL_PASSWORD\"|" \
  -e "s|^spool_dir = \"/var/spool/freeswitch/twiml\"|spool_dir = \"$SPOOL\"|" \
  -e "s|^spool_dir_local = \"/var/spool/freeswitch/twiml\"|spool_dir_local = \"$SPOOL\"|" \
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
