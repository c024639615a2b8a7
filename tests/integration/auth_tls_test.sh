#!/usr/bin/env bash
# TCP only with TLS and client authentication, end to end (issue 15 item 7):
# a non-loopback listener without TLS is refused at start naming the flags;
# over TLS a client without a certificate or token is refused, one with a
# client certificate signed by --tls_client_ca works (its subject owns its
# jobs), one with a token from --token_file works, a wrong token or an
# untrusted certificate is refused with advice; principals may not act on
# each other's jobs; plain loopback TCP needs --insecure_loopback.
# Certificates are made here (tests/integration/make_test_pki.sh).
set -uo pipefail

source "${TEST_SRCDIR}/stronghold/tests/integration/daemon_lib.sh"

PKI="$WORK/pki"
"${TEST_SRCDIR}/stronghold/tests/integration/make_test_pki.sh" "$PKI" || {
  echo "FAIL: cannot make certificates (is openssl installed?)"; exit 1; }
printf '%s robot\n' "$(printf %s 'robot-token-1' | sha256sum | cut -d' ' -f1)" >"$WORK/tokens"
printf 'robot-token-1\n' >"$WORK/robot.token"
printf 'not-the-token\n' >"$WORK/wrong.token"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')

# --- refused at start: the daemon exits 2 naming the flags, and serves nothing
refused_start() {  # refused_start WHAT PATTERN FLAG...
  local what=$1 pattern=$2; shift 2
  "$DAEMON" --socket "$SOCK" --state_dir "$STATE" --metrics_listen= "$@" >"$WORK/start.txt" 2>&1
  local rc=$?
  if [ $rc -eq 2 ] && grep -q -- "$pattern" "$WORK/start.txt" && [ ! -e "$SOCK" ]; then
    ok "$what"
  else
    bad "$what (rc=$rc): $(cat "$WORK/start.txt")"
  fi
}
refused_start "non-loopback --listen without TLS is refused naming the flags" \
  "needs TLS and client authentication: --tls_cert and --tls_key, and --tls_client_ca (client \
certificates) and/or --token_file" \
  --listen "0.0.0.0:$PORT"
refused_start "TLS without client authentication is refused" \
  "needs TLS and client authentication" \
  --listen "0.0.0.0:$PORT" --tls_cert "$PKI/server.crt" --tls_key "$PKI/server.key"
refused_start "plain loopback TCP needs --insecure_loopback" "--insecure_loopback" \
  --listen "127.0.0.1:$PORT"
refused_start "--insecure_loopback on a non-loopback address is refused" \
  "is not a loopback address" --listen "0.0.0.0:$PORT" --insecure_loopback
refused_start "a certificate file that is not PEM is refused naming the flag" \
  "--tls_cert: $PKI/garbage.pem: not a PEM certificate" --listen "0.0.0.0:$PORT" \
  --tls_cert "$PKI/garbage.pem" --tls_key "$PKI/server.key" --token_file "$WORK/tokens"
refused_start "a non-loopback metrics address needs --metrics_allow_remote" \
  "--metrics_allow_remote" --metrics_listen "0.0.0.0:0"

# --- TLS with client certificates and tokens, on every interface
start_daemon --listen "0.0.0.0:$PORT" --tls_cert "$PKI/server.crt" --tls_key "$PKI/server.key" \
  --tls_client_ca "$PKI/ca.crt" --token_file "$WORK/tokens"
TCP="localhost:$PORT"
tls() { "$CTL" --daemon "$TCP" --tls-ca "$PKI/ca.crt" "$@"; }
alice() { tls --tls-cert "$PKI/alice.crt" --tls-key "$PKI/alice.key" "$@"; }
robot() { tls --token-file "$WORK/robot.token" "$@"; }

refused() {  # refused WHAT PATTERN CMD...
  local what=$1 pattern=$2; shift 2
  "$@" >"$WORK/refused.txt" 2>&1
  local rc=$?
  if [ $rc -ne 0 ] && grep -q -- "$pattern" "$WORK/refused.txt"; then
    ok "$what"
  else
    bad "$what (rc=$rc): $(cat "$WORK/refused.txt")"
  fi
}
refused "a client without certificate or token is refused" \
  "UNAUTHENTICATED: the daemon at $TCP did not accept your credentials (the daemon requires \
a client certificate signed by a CA it trusts or a bearer token" \
  tls node
refused "a wrong token is refused" \
  "UNAUTHENTICATED: .*(the bearer token is not one the daemon accepts); check the token" \
  tls --token-file "$WORK/wrong.token" node
refused "a client certificate the daemon does not trust is refused, and told why" \
  "refused the connection .* does not trust your client certificate" \
  tls --tls-cert "$PKI/other.crt" --tls-key "$PKI/other.key" node
refused "a plain client is told the daemon may serve TLS" "if it serves TLS, give its CA" \
  "$CTL" --daemon "$TCP" node
refused "a host name the daemon's certificate does not name is explained" \
  "certificate is not issued for \"127.0.0.2\"" \
  "$CTL" --daemon "127.0.0.2:$PORT" --tls-ca "$PKI/ca.crt" node
refused "a CA file that is not PEM is a usage error naming it" \
  "--tls-ca: $PKI/garbage.pem: not a PEM certificate" \
  "$CTL" --daemon "$TCP" --tls-ca "$PKI/garbage.pem" node

check "a client certificate works" alice node
alice submit --name alices --layers 2 --hidden 64 --heads 4 --seq-len 64 --steps 100000 \
  >/dev/null 2>&1
check "alice's job runs" wait_state 1 RUNNING
owner=$("$CTL" status 1 --output json | json_field owner)
check "the certificate's subject owns the job ($owner)" test "$owner" = "CN=alice,O=Stronghold Test"
check "a token works" robot node
STRONGHOLD_TOKEN=robot-token-1 tls submit --layers 2 --hidden 64 --heads 4 --seq-len 64 \
  --steps 5 >/dev/null 2>&1
check "\$STRONGHOLD_TOKEN works; the token's principal owns the job" \
  test "$("$CTL" status 2 --output json | json_field owner)" = robot
refused "the token's principal cannot cancel alice's job" \
  "PERMISSION_DENIED: robot may not cancel jobs/1, which belongs to CN=alice,O=Stronghold Test" \
  robot cancel 1
check "robot reads alice's job" robot status 1
robot cancel 2 >/dev/null 2>&1
check "robot cancels its own job" \
  test "$("$CTL" status 2 --output json | json_field state)" = CANCELLED
alice cancel 1 >/dev/null 2>&1
check "alice cancels her own job" wait_state 1 CANCELLED
check "the daemon still serves on its unix socket" "$CTL" node
stop_daemon

# --- plain loopback TCP, for tests only
start_daemon --listen "127.0.0.1:$PORT" --insecure_loopback
"$CTL" --daemon "127.0.0.1:$PORT" submit --layers 2 --hidden 64 --heads 4 --seq-len 64 \
  --steps 5 >/dev/null 2>&1
check "--insecure_loopback serves plain TCP as the principal insecure-loopback" \
  test "$("$CTL" status 3 --output json | json_field owner)" = insecure-loopback
check "the daemon warns about --insecure_loopback" grep -q "TESTING ONLY: --insecure_loopback" \
  "$WORK/daemon.log"
stop_daemon
finish
