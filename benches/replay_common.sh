# Shared by the scripts that feed a receiver with fstrm_replay
# (vs_fstrm_capture.sh, replay_sched.sh); sourced, not run.

ct=protobuf:dnstap.Dnstap
# A failing command inside $(...) fails the script too.
shopt -s inherit_errexit

# wait_sock PATH: wait up to 5 s for a receiver's unix socket to appear.
wait_sock() {
  for _ in $(seq 500); do [ -S "$1" ] && return; sleep 0.01; done
  echo "no socket $1" >&2
  exit 1
}

# start_edm DIR WELL_KNOWN: start `$edm run` on a unix socket at DIR/edm.sock
# with the full pipeline (sessions, histograms, seen check; as many workers as
# CPUs), logging to DIR/out and DIR/err; sets $edm_pid and waits for the socket.
start_edm() {
  local d=$1
  mkdir -p "$d"
  cat > "$d/edm.toml" <<TOML
input-unix = "$d/edm.sock"
data-dir = "$d/data"
cryptopan-key = "edm-bench"
well-known-domains-file = "$2"
minimiser-workers = 0
cryptopan-address-entries = 1000000
qname-seen-entries = 1000000
metrics-address = ""
disable-mqtt = true
TOML
  "$edm" run --config "$d/edm.toml" >"$d/out" 2>"$d/err" &
  edm_pid=$!
  wait_sock "$d/edm.sock"
}

# stop_edm: SIGTERM edm and wait for it to flush every file and exit.
stop_edm() {
  kill -TERM "$edm_pid"
  wait "$edm_pid"
  edm_pid=
}

# check_edm DIR FRAMES: fail unless edm accounted for all FRAMES frames.
check_edm() {
  grep -q "edm: $2 frames" "$1/out" || { echo "edm lost frames: $(cat "$1/out")" >&2; exit 1; }
}
