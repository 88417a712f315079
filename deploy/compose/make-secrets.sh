#!/usr/bin/env bash
# Create deploy/compose/secrets/: the broker's password file (user `platform`, password
# from deploy/.env) and a self-signed TLS certificate for the broker's host name.
# Usage: deploy/compose/make-secrets.sh [broker-host-name]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
host="${1:-localhost}"
secrets="$here/secrets"
# shellcheck disable=SC1091
source "$here/../.env"
mkdir -p "$secrets/certs"
umask 077
passwd="$secrets/carecircle.passwd"
: > "$passwd"
# mosquitto_passwd from the broker image, so nothing needs installing on the host.
docker run --rm -v "$secrets:/s" eclipse-mosquitto:2.0 \
    mosquitto_passwd -b /s/carecircle.passwd platform "$MQTT_PLATFORM_PASSWORD"
cd "$secrets/certs"
openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj "/CN=CareCircle CA" \
    -keyout ca.key -out ca.crt
openssl req -newkey rsa:3072 -nodes -subj "/CN=$host" -keyout server.key -out server.csr
printf 'subjectAltName=DNS:%s\n' "$host" > san.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
    -out server.crt -extfile san.ext
# The image's broker runs as uid 1883: it must read the key and the password file.
chmod 0755 "$secrets" "$secrets/certs"
chmod 0644 ca.crt server.crt
chmod 0600 server.key ca.key "$passwd"
if ! chown 1883:1883 server.key "$passwd" 2>/dev/null; then
    echo "run: sudo chown 1883:1883 $secrets/certs/server.key $passwd" >&2
fi
echo "secrets in $secrets (add gateways with mosquitto_passwd -b $passwd <gw-id> <password>)"
