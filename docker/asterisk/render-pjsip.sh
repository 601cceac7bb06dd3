#!/bin/sh
# pjsip.conf from the project's SIP trunk example (dialplan/asterisk/pjsip_twiml.conf), with only
# its transport's `bind` (SIP_BIND) and the trunk peer's `match` (SIP_TRUNK_MATCH) changed: the
# same file the test lab loads (tests/labs/asterisk_lab.py, render_pjsip_conf), for a container.
#
#   render-pjsip.sh EXAMPLE > pjsip.conf
set -eu
example=$1
bind=${SIP_BIND:-0.0.0.0:5060}
match=${SIP_TRUNK_MATCH:-127.0.0.1}
for line in 'bind = 127.0.0.1:5060' 'match = 127.0.0.1'; do
  if [ "$(grep -cxF "$line" "$example")" -ne 1 ]; then
    echo "render-pjsip.sh: $example has no single line '$line'" >&2
    exit 1
  fi
done
sed -e "s|^bind = 127.0.0.1:5060\$|bind = $bind|" -e "s|^match = 127.0.0.1\$|match = $match|" \
  "$example"
