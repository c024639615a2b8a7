#!/usr/bin/env bash
# Issue 15 item 4 with the real daemon: slow metrics clients (one byte then
# silence; a request whose response is never read; more connections than
# --metrics_max_connections) do not delay another scrape by more than 1 s,
# and the stalled connections are closed at their deadline.
set -uo pipefail

source "${TEST_SRCDIR}/stronghold/tests/integration/daemon_lib.sh"

start_daemon --metrics_listen=127.0.0.1:0 --metrics_max_connections=4 \
  --metrics_request_timeout=2s
port=$(sed -n 's/.*metrics at 127.0.0.1:0 (port \([0-9]*\)).*/\1/p' "$WORK/daemon.log" | head -1)
check "the metrics port is in the log" test -n "$port"

python3 - "$port" >"$WORK/slow.txt" 2>&1 <<'PY'
import socket, sys, time
port = int(sys.argv[1])
SCRAPE = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"

def connect():
    s = socket.create_connection(("127.0.0.1", port))
    return s

def scrape():
    start = time.monotonic()
    s = connect()
    s.settimeout(15)
    s.sendall(SCRAPE)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return time.monotonic() - start, data

def closed_within(s, seconds):
    s.settimeout(seconds)
    try:
        while s.recv(65536):
            pass
        return True
    except (socket.timeout, ConnectionResetError) as e:
        return isinstance(e, ConnectionResetError)

failed = 0
def check(what, ok):
    global failed
    print(("PASS: " if ok else "FAIL: ") + what)
    failed += 0 if ok else 1

t, data = scrape()
check("a scrape answers (%.3f s)" % t, data.startswith(b"HTTP/1.1 200 OK") and b"stronghold_" in data)

one_byte = connect()
one_byte.sendall(b"G")
never_reads = connect()
never_reads.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
never_reads.sendall(SCRAPE)
time.sleep(0.2)
t, data = scrape()
check("a scrape beside a one-byte client and a non-reader takes < 1 s (%.3f s)" % t,
      t < 1.0 and data.startswith(b"HTTP/1.1 200 OK"))

# Past the cap: the one-byte client and three more held connections fill it
# (4; the non-reader's small response fit the socket buffers, so it ended),
# and the next is closed at once.
held = [connect(), connect(), connect()]
for s in held:
    s.sendall(b"G")
time.sleep(0.2)
extra = connect()
start = time.monotonic()
check("a connection past --metrics_max_connections is closed at once",
      closed_within(extra, 1.0) and time.monotonic() - start < 1.0)

# The deadline (2 s) closes the silent ones; scrapes are served again.
check("the one-byte client is closed at the deadline", closed_within(one_byte, 3.0))
time.sleep(0.5)
t, data = scrape()
check("after the deadline a scrape answers (%.3f s)" % t, data.startswith(b"HTTP/1.1 200 OK"))
sys.exit(1 if failed else 0)
PY
rc=$?
cat "$WORK/slow.txt"
check "slow metrics clients delay no scrape" test "$rc" -eq 0
check "the daemon still serves gRPC" quiet "$CTL" node
stop_daemon
check "the daemon stops cleanly with connections held" test $? -eq 0

finish
