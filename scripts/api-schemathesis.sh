#!/usr/bin/env bash
# Property-based testing of the Firecracker-compatible API with schemathesis
# against docs/openapi.yaml: no 5xx, no crash, every response as documented.
# Bounded: a few examples per operation, the whole step well under a minute.
#
# schemathesis speaks TCP, the API a Unix socket: a small forwarder on
# 127.0.0.1 joins them. Usage: scripts/api-schemathesis.sh [path/to/swiftvmm]
set -euo pipefail
cd "$(dirname "$0")/.."
binary=$(realpath "${1:-.build/debug/swiftvmm}")
spec=$(realpath docs/openapi.yaml)
work=$(mktemp -d /tmp/swvm-st-XXXXXX)
socket="$work/api.sock"
cleanup() {
    [ -n "${forwarder:-}" ] && kill "$forwarder" 2>/dev/null || true
    [ -n "${server:-}" ] && kill "$server" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# In the scratch folder: the fuzzed requests name files (log and metrics
# paths) relative to the server's directory, and schemathesis keeps a cache in its own.
cd "$work"
"$binary" serve --api-sock "$socket" >"$work/stdout" 2>"$work/stderr" &
server=$!
for _ in $(seq 200); do [ -S "$socket" ] && break; sleep 0.05; done
[ -S "$socket" ] || { echo "swiftvmm serve did not listen on $socket" >&2; cat "$work/stderr" >&2; exit 1; }

port_file="$work/port"
python3 - "$socket" "$port_file" <<'PY' &
import socket, sys, threading
unix_path, port_file = sys.argv[1], sys.argv[2]
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(64)
open(port_file, "w").write(str(listener.getsockname()[1]))
def pump(source, sink):
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            try: s.shutdown(socket.SHUT_RDWR)
            except OSError: pass
def serve(client):
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    upstream.connect(unix_path)
    threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
    pump(client, upstream)
while True:
    connection, _ = listener.accept()
    threading.Thread(target=serve, args=(connection,), daemon=True).start()
PY
forwarder=$!
for _ in $(seq 100); do [ -s "$port_file" ] && break; sleep 0.05; done
port=$(cat "$port_file")

set +e
timeout 120 schemathesis run "$spec" --url "http://127.0.0.1:$port" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples 8 --generation-deterministic --request-timeout 10 --no-color
status=$?
set -e
# The server must still be there and answering after everything schemathesis sent.
if ! kill -0 "$server" 2>/dev/null; then
    echo "swiftvmm serve died during the run:" >&2
    cat "$work/stderr" >&2
    exit 1
fi
exit "$status"
