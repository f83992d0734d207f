# `chorus serve` under a crowd of connections that do not finish their
# business (loopback, bounded): 64 idle keep-alive connections, 16 that
# connect and send nothing and 16 that send their headers one byte every
# half second. While all of them are provably still open, /health and a
# completion are answered; afterwards every idle connection still answers
# a second request and every slow one completes its request (so none was
# dropped to make room), and the silent ones are dropped after the
# keep-alive wait. With too few HTTP workers (cpp-httplib's default of 8)
# the crowd holds them all and the checks fail. No latency is asserted:
# only "answered while the crowd is open", with generous bounds against hangs.
source "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
M="$SRC/models/stories260K.gguf"
start_server -m "$M" --timeout 10 -c 256 || finish

port=${U##*:}
out=$(timeout 120 python3 - "$port" <<'EOF' 2>&1
import json, socket, sys, threading, time
port = int(sys.argv[1])

def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def read_response(s):
    """One HTTP/1.1 response with Content-Length: (status, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for l in lines[1:]:
        k, v = l.split(":", 1)
        if k.lower() == "content-length":
            length = int(v)
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError("connection closed mid-body")
        body += chunk
    return status, body

def request(s, method, path, body=b""):
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    return read_response(s)

def still_open(s):
    """True while the server has not closed s (nothing to read, no EOF)."""
    s.setblocking(False)
    try:
        return len(s.recv(1, socket.MSG_PEEK)) > 0
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        s.setblocking(True)

# The crowd.
idle = [connect() for _ in range(64)]
for s in idle:
    assert request(s, "GET", "/health")[0] == 200
silent = [connect() for _ in range(16)]
slow = [connect() for _ in range(16)]
slow_req = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 64 + b"\r\n\r\n"
held_back = 4  # the blank line ending the headers is sent only at the end
stop_dribble = threading.Event()
sent = [0] * len(slow)
def dribble():
    while not stop_dribble.is_set():
        for i, s in enumerate(slow):
            if sent[i] < len(slow_req) - held_back:
                s.send(slow_req[sent[i]:sent[i] + 1])
                sent[i] += 1
        stop_dribble.wait(0.5)
t = threading.Thread(target=dribble)
t.start()
time.sleep(0.5)  # every crowd connection has reached the server

# Served beside the crowd, on fresh connections.
st, body = request(connect(), "GET", "/health")
print("health", st, json.loads(body))
st, body = request(connect(), "POST", "/v1/completions",
                   json.dumps({"prompt": "Once upon a time", "max_tokens": 4, "temperature": 0}).encode())
print("completion", st, json.loads(body)["usage"]["completion_tokens"] if st == 200 else body)
# ... while the crowd was still open (the slow ones have not ended their headers).
print("open after answers:", sum(map(still_open, idle)), "idle,", sum(map(still_open, silent)),
      "silent,", sum(map(still_open, slow)), "slow")
stop_dribble.set()
t.join()
# Each idle connection answers again; each slow one completes its request.
print("idle answer again:", sum(1 for s in idle if request(s, "GET", "/health")[0] == 200))
done = 0
for i, s in enumerate(slow):
    s.sendall(slow_req[sent[i]:])
    done += read_response(s)[0] == 200
print("slow complete:", done)
# A silent connection is dropped after the keep-alive wait (5 s; up to 30 s allowed).
deadline = time.time() + 30
while time.time() < deadline and any(map(still_open, silent)):
    time.sleep(0.2)
print("silent dropped:", sum(1 for s in silent if not still_open(s)))
EOF
) || true
echo "$out"
grep -q "^health 200 {'status': 'ok'}$" <<<"$out" && echo "ok: /health answered beside the crowd" || fail "/health beside the crowd: $out"
grep -q "^completion 200 4$" <<<"$out" && echo "ok: a completion answered beside the crowd" || fail "completion beside the crowd: $out"
grep -q "^open after answers: 64 idle, 16 silent, 16 slow$" <<<"$out" &&
  echo "ok: answered while all 96 crowd connections were open" || fail "crowd closed before the answers: $out"
grep -q "^idle answer again: 64$" <<<"$out" && echo "ok: the idle connections still answer" || fail "idle: $out"
grep -q "^slow complete: 16$" <<<"$out" && echo "ok: the slow connections complete" || fail "slow: $out"
grep -q "^silent dropped: 16$" <<<"$out" && echo "ok: silent connections dropped" || fail "silent: $out"
curl -s -m 10 "$U/health" | grep -q '"ok"' && echo "ok: still up" || fail "server down: $(tail -5 "$TMP/server.err")"
stop_server

expect_error "bad --threads-http" "--threads-http" "$CHORUS" serve -m "$M" --threads-http 0 --port 0
expect_error "bad --timeout" "--timeout" "$CHORUS" serve -m "$M" --timeout 0 --port 0
finish
