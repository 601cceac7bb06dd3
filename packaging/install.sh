#!/usr/bin/env bash
# Prepares a machine to run twiml-pbx-adapter as the systemd service twiml-adapter.service, beside
# an Asterisk or a FreeSWITCH that is already installed (its user and group exist):
#
#   sudo packaging/install.sh asterisk      # or: freeswitch
#
# - the system user and group twiml-adapter (no login, home /var/lib/twiml-adapter), a member of
#   the PBX's group;
# - the spool folder shared with the PBX, owned by the PBX's user and group, mode 2770 (setgid:
#   whatever either side creates in it belongs to the PBX's group; the adapter's UMask=0007 and
#   the PBX's umask 0007/0002 keep it group-writable);
# - /var/lib/twiml-adapter (0750) and /etc/twiml-adapter/adapter.toml from packaging/adapter.toml,
#   owned by twiml-adapter, mode 600 (an existing file is left as it is, its mode fixed);
# - the unit in /etc/systemd/system; for FreeSWITCH a drop-in naming FreeSWITCH's group, and one
#   giving freeswitch.service UMask=0007 (a FreeSWITCH started otherwise needs `umask 0007`).
#
# It does not install the adapter itself (the venv in /opt/twiml-adapter/venv: see the quick
# starts) nor start anything. Idempotent. Every path and name can be overridden (tests do):
# TWIML_USER, PBX_USER, PBX_GROUP, TWIML_SPOOL, TWIML_DATA, TWIML_ETC, TWIML_SYSTEMD.
set -euo pipefail

pbx=${1:-}
case "$pbx" in
  asterisk) default_spool=/var/spool/asterisk/twiml ;;
  freeswitch) default_spool=/var/spool/freeswitch/twiml ;;
  *) echo "usage: $0 asterisk|freeswitch" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
user=${TWIML_USER:-twiml-adapter}
pbx_user=${PBX_USER:-$pbx}
pbx_group=${PBX_GROUP:-$pbx_user}
spool=${TWIML_SPOOL:-$default_spool}
data=${TWIML_DATA:-/var/lib/twiml-adapter}
etc=${TWIML_ETC:-/etc/twiml-adapter}
systemd=${TWIML_SYSTEMD:-/etc/systemd/system}

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run it as root (sudo), it creates a system user" >&2; exit 2
fi
if ! getent passwd "$pbx_user" >/dev/null || ! getent group "$pbx_group" >/dev/null; then
  echo "install.sh: no user $pbx_user or group $pbx_group: install $pbx first" \
       "(or set PBX_USER/PBX_GROUP to the user $pbx runs as)" >&2
  exit 2
fi

if ! getent passwd "$user" >/dev/null; then
  useradd --system --user-group --home-dir "$data" --no-create-home \
    --shell /usr/sbin/nologin --comment "twiml-pbx-adapter" "$user"
fi
usermod --append --groups "$pbx_group" "$user"

install -d -o "$pbx_user" -g "$pbx_group" -m 2770 "$spool"
install -d -o "$user" -g "$user" -m 0750 "$data"
install -d -o "$user" -g "$user" -m 0750 "$etc"
if [ ! -e "$etc/adapter.toml" ]; then
  install -o "$user" -g "$user" -m 600 "$here/adapter.toml" "$etc/adapter.toml"
  if [ "$pbx" = freeswitch ]; then
    sed -i 's/^type = "asterisk"$/type = "freeswitch"/' "$etc/adapter.toml"
  fi
fi
chown "$user:$user" "$etc/adapter.toml"
chmod 600 "$etc/adapter.toml"

install -d -m 0755 "$systemd"
install -m 0644 "$here/twiml-adapter.service" "$systemd/twiml-adapter.service"
dropin="$systemd/twiml-adapter.service.d"
if [ "$pbx_group" != asterisk ] || [ "$user" != twiml-adapter ]; then
  install -d -m 0755 "$dropin"
  {
    echo "# Written by packaging/install.sh $pbx."
    echo "[Service]"
    if [ "$user" != twiml-adapter ]; then
      echo "User=$user"
      echo "Group=$user"
    fi
    echo "SupplementaryGroups="
    echo "SupplementaryGroups=$pbx_group"
  } >"$dropin/pbx-group.conf"
else
  rm -f "$dropin/pbx-group.conf"
fi
if [ "$pbx" = freeswitch ]; then
  # uuid_record creates the call's folder as FreeSWITCH: group-writable, so the adapter can too.
  install -d -m 0755 "$systemd/freeswitch.service.d"
  printf '# Written by packaging/install.sh freeswitch.\n[Service]\nUMask=0007\n' \
    >"$systemd/freeswitch.service.d/twiml-umask.conf"
fi
echo "install.sh: $user (groups: $(id -nG "$user")), spool $spool ($pbx_user:$pbx_group 2770)," \
     "config $etc/adapter.toml (600): edit it, then: systemctl daemon-reload &&" \
     "systemctl enable --now twiml-adapter"
