#!/usr/bin/env bash
# Makes a throw-away PKI for the TLS tests in DIR (no private key is ever
# committed): openssl (Debian package openssl) is all it needs.
#   ca.crt/ca.key          the CA that signs the daemon's and alice's certificates
#   server.crt/server.key  CN=localhost, SAN DNS:localhost, IP:127.0.0.1
#   alice.crt/alice.key    a client certificate: subject CN=alice,O=Stronghold Test
#   other.crt/other.key    a self-signed certificate no one trusts (CN=mallory)
#   garbage.pem            not PEM at all
# Usage: make_test_pki.sh DIR
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }
key ca.key
openssl req -x509 -new -key ca.key -days 2 -subj "/CN=Stronghold Test CA" -out ca.crt 2>/dev/null
sign() {  # sign NAME SUBJECT EXTENSIONS
  key "$1.key"
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}
sign server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
sign alice "/O=Stronghold Test/CN=alice" "extendedKeyUsage=clientAuth"
key other.key
openssl req -x509 -new -key other.key -days 2 -subj "/CN=mallory" -out other.crt 2>/dev/null
echo "not a certificate" >garbage.pem
