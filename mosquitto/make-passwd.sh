#!/usr/bin/env bash
# Create the broker's password file for docker-compose.yml, with the users named in mosquitto/acl:
#   clipbridge  (the service; docker-compose.yml passes it CLIPBRIDGE_MQTT_PASSWORD)
#   analytics   (the example publisher)
#
# Usage: CLIPBRIDGE_MQTT_PASSWORD=... ANALYTICS_MQTT_PASSWORD=... mosquitto/make-passwd.sh [output-file]
# The output defaults to mosquitto/passwd next to this script; it is replaced, not merged.
#
# The broker in the eclipse-mosquitto image reads the file after dropping privileges to its own user (uid 1883),
# so the file is made readable by all (mode 0644; the passwords in it are salted PBKDF2-SHA512 hashes). Mosquitto
# logs a warning about that. To silence it, run as root with PASSWD_OWNER=1883:1883: the file is then given to
# that owner with mode 0600.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/passwd}"

fail() {
    echo "make-passwd.sh: $*" >&2
    exit 1
}

missing=()
[[ -n "${CLIPBRIDGE_MQTT_PASSWORD:-}" ]] || missing+=(CLIPBRIDGE_MQTT_PASSWORD)
[[ -n "${ANALYTICS_MQTT_PASSWORD:-}" ]] || missing+=(ANALYTICS_MQTT_PASSWORD)
if ((${#missing[@]})); then
    fail "set ${missing[*]} (the MQTT passwords of the users clipbridge and analytics), e.g.
  CLIPBRIDGE_MQTT_PASSWORD='...' ANALYTICS_MQTT_PASSWORD='...' $0"
fi

passwd_tool="$(command -v mosquitto_passwd || true)"
if [[ -z "$passwd_tool" ]]; then
    fail "mosquitto_passwd not found: install it (Debian/Ubuntu: sudo apt-get install mosquitto), or run this
  script inside the broker's image: docker run --rm -e CLIPBRIDGE_MQTT_PASSWORD -e ANALYTICS_MQTT_PASSWORD \\
    -v \"$here:/work\" --entrypoint sh eclipse-mosquitto:2 -c 'apk add --no-cache bash >/dev/null && bash /work/make-passwd.sh'"
fi

if [[ -d "$out" ]]; then
    # docker-compose creates a missing bind-mount source as an empty folder.
    fail "$out is a folder (made by docker-compose when the file was missing?): remove it (rmdir \"$out\") and rerun"
fi
mkdir -p "$(dirname "$out")"
tmp="$(mktemp "$(dirname "$out")/.passwd.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
# -c creates (truncates) the file, -b takes the password from the command line.
"$passwd_tool" -b -c "$tmp" clipbridge "$CLIPBRIDGE_MQTT_PASSWORD"
"$passwd_tool" -b "$tmp" analytics "$ANALYTICS_MQTT_PASSWORD"

if [[ -n "${PASSWD_OWNER:-}" ]]; then
    chown "$PASSWD_OWNER" "$tmp" || fail "cannot chown the password file to $PASSWD_OWNER (run as root)"
    chmod 0600 "$tmp"
else
    chmod 0644 "$tmp"
fi
mv -f "$tmp" "$out"
trap - EXIT
echo "wrote $out (users: clipbridge, analytics)"
