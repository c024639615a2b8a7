# Two daemons on loopback for the distributed tests (source after
# daemon_lib.sh): rank 0's is daemon_lib's ($SOCK, `A`), rank 1's is B
# ($B_SOCK, `B`), both with one optimizer thread and OMP_NUM_THREADS=1 (CPU
# results must not depend on thread counts).
export OMP_NUM_THREADS=1
B_SOCK="$SOCK_DIR/b.sock"
B_STATE="$WORK/state-b"
B_PID=""
cleanup_b() { [ -n "$B_PID" ] && kill -9 "$B_PID" 2>/dev/null; cleanup; }
trap cleanup_b EXIT

A() { "$CTL" --daemon "unix:$SOCK" "$@"; }
B() { "$CTL" --daemon "unix:$B_SOCK" "$@"; }

# start_daemon_b [STATE_DIR]: rank 1's daemon, serving once this returns.
start_daemon_b() {
  B_STATE=${1:-$B_STATE}
  "$DAEMON" --socket "$B_SOCK" --state_dir "$B_STATE" --metrics_listen= \
    --optimizer_threads 1 --node_profile=false --data_root "$DATA_ROOT" \
    --ssd_root "$SSD_ROOT" >>"$WORK/daemon-b.log" 2>&1 &
  B_PID=$!
  for _ in $(seq 1 200); do
    B node >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_daemon    # rank 0's, on $SOCK
start_daemon_b  # rank 1's, on $B_SOCK
