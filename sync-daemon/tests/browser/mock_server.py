#!/usr/bin/env python3
"""A mock of wavesyncd's HTTP API (`--http`), for working on the status page without a daemon.

Python 3.11, standard library only. It serves:

  GET  /                 sync-daemon/src/http/page.html, read from disk on every request (edit,
                         reload), with the daemon's Content-Security-Policy header
  GET  /api/status       the status JSON (N connected peers + K disconnected, moving counters)
  GET  /api/throughput   {"interval_s": 1, "samples": [...]}: the last up to 300 s, per second
  GET  /api/events       Server-Sent Events: `event: tx` + one JSON line; `: keep-alive` every 5 s

and, to drive a test:

  POST /_mock/remote     emit one remote transaction event now (answers with its JSON);
                         query ?rows=N&table=NAME to choose the row count and table
  POST /_mock/local      the same for a local transaction
  POST /_mock/drop-sse   end every open event stream (the page must reconnect by itself)
  POST /_mock/daemon?running=0|1   the daemon stops / starts ("daemon": null while stopped)

Run it (from the repository root; --port 0 picks a free port):

  python3 sync-daemon/tests/browser/mock_server.py --port 8080 --peers 2
  # open http://127.0.0.1:8080/ , then:  curl -X POST http://127.0.0.1:8080/_mock/remote

Options: --peers N connected peers (default 2), --disconnected K more, not connected
(default 1), --auto S emit a remote or local event every S seconds (default 0: only on POST),
--no-daemon start with "daemon": null, --hostile put HTML/script-looking strings in every
string field (the page must show them as text: with innerHTML an <img src=x> would make a
request the harness reports), --page PATH another page file. It prints
`LISTENING http://127.0.0.1:PORT` on stdout once it accepts connections.

The harness against it:

  node sync-daemon/tests/browser/status_page.mjs --url http://127.0.0.1:8080/ --peers 2 &
  # after it prints READY:
  curl -X POST http://127.0.0.1:8080/_mock/remote
"""

import argparse
import json
import os
import queue
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PAGE = os.path.normpath(os.path.join(HERE, "..", "..", "src", "http", "page.html"))
# The header wavesyncd sends with the page (sync-daemon/src/http/mod.rs).
CSP = "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:"
COUNTERS = ["gossip_received", "gossip_applied", "gossip_rejected", "gossip_replayed", "published",
            "catchup_requests_served", "catchup_rejected", "catchup_pages_sent", "catchup_pages_received",
            "catchup_pages_applied", "apply_failed", "partial_dropped", "gossip_dropped_busy",
            "rows_applied", "rows_published", "compactions", "tombstones_removed", "resyncs"]
HOSTILE = '<img src=x onerror="document.title=\'pwned\'"><script>alert(1)</script>&amp;'


def hexid(rng):
    return "".join(rng.choice("0123456789abcdef") for _ in range(32))


def peerid(rng):
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    return "12D3KooW" + "".join(rng.choice(alphabet) for _ in range(44))


class Mock:
    def __init__(self, args):
        rng = random.Random(7)
        self.lock = threading.Lock()
        self.hostile = args.hostile
        self.started = int(time.time()) - 3725
        self.running = not args.no_daemon
        self.site_id, self.peer_id = hexid(rng), peerid(rng)
        self.db = "/var/lib/wavesync/" + (HOSTILE if args.hostile else "tasks.db")
        self.db_version = 1200
        self.counters = {k: 0 for k in COUNTERS}
        self.counters.update(gossip_received=5310, gossip_applied=5301, gossip_rejected=2, published=1874,
                             rows_applied=48211, rows_published=16002, catchup_requests_served=14,
                             catchup_pages_sent=31, catchup_pages_received=22, catchup_pages_applied=22,
                             compactions=3, tombstones_removed=812)
        self.peers = []
        for i in range(args.peers + args.disconnected):
            up = i < args.peers
            self.peers.append({
                "peer_id": peerid(rng), "site_id": hexid(rng) if up or i % 2 else None,
                "addresses": [f"/ip4/127.0.0.1/tcp/{4002 + i}", f"/ip4/10.0.0.{10 + i}/tcp/4001"],
                "connected": up, "connection": ("relayed" if i % 3 == 2 else "direct") if up else None,
                "they_lack_versions": 0 if up else None, "we_lack_versions": i % 2 if up else None,
                "last_catchup_unix": int(time.time()) - 40 * (i + 1) if up or i % 2 else None,
            })
        self.samples = []  # per second, oldest first
        now = int(time.time())
        for t in range(now - 299, now + 1):
            self.samples.append(self._sample(t, rng))
        self.rng = rng
        self.clients = []  # queues of the open event streams
        self.seq = 0

    def _sample(self, t, rng):
        base = 40 + 30 * ((t // 37) % 3)
        return {"unix": t, "rows_applied": max(0, int(base + rng.gauss(0, 12))),
                "rows_published": max(0, int(base / 3 + rng.gauss(0, 5)))}

    def tick(self):
        with self.lock:
            s = self._sample(int(time.time()), self.rng)
            self.samples = [x for x in self.samples if x["unix"] != s["unix"]][-299:] + [s]
            self.counters["rows_applied"] += s["rows_applied"]
            self.counters["rows_published"] += s["rows_published"]
            self.counters["gossip_received"] += 2
            self.counters["gossip_applied"] += 2
            self.counters["published"] += 1

    def status(self):
        with self.lock:
            now = int(time.time())
            daemon = None
            if self.running:
                peers = json.loads(json.dumps(self.peers))
                if self.hostile:
                    for p in peers:
                        p["addresses"].append(HOSTILE)
                        p["connection"] = p["connection"] and p["connection"] + HOSTILE
                daemon = {"pid": 4242, "peer_id": self.peer_id, "site_id": self.site_id, "db": self.db,
                          "started_unix": self.started, "updated_unix": now,
                          "listen": [f"/ip4/127.0.0.1/tcp/4001/p2p/{self.peer_id}"], "http": "127.0.0.1:8080",
                          "peers": peers, "counters": dict(self.counters), "last_catchup_unix": now - 40,
                          "last_compaction_unix": now - 1800, "resyncing": False, "some_future_field": [1, 2]}
            return {"db": self.db, "daemon_running": self.running, "site_id": self.site_id,
                    "db_version": self.db_version, "vector": {self.site_id: self.db_version},
                    "database_error": HOSTILE if self.hostile else None, "daemon": daemon}

    def throughput(self):
        with self.lock:
            # wavesyncd has no samples while its event loop has not reported.
            return {"interval_s": 1, "samples": list(self.samples) if self.running else []}

    def emit(self, kind, rows=None, table=None):
        with self.lock:
            rng = self.rng
            connected = [p for p in self.peers if p["connected"] and p["site_id"]]
            origin = rng.choice(connected)["site_id"] if kind == "remote" and connected else self.site_id
            start = self.db_version + 1
            n = rng.randint(1, 3)
            self.db_version += n
            rows = rows if rows is not None else rng.randint(1, 40)
            table = table or rng.choice(["tasks", "projects", "comments"])
            if self.hostile:
                table += HOSTILE
            ev = {"kind": kind, "origin": origin, "start": start, "end": start + n - 1, "tables": [table],
                  "rows": rows, "via": rng.choice(["gossip", "gossip", "catchup"]) if kind == "remote" else "local",
                  "unix_ms": int(time.time() * 1000)}
            for q in self.clients:
                q.put(ev)
            return ev

    def drop_streams(self):
        with self.lock:
            for q in self.clients:
                q.put(None)


def make_handler(mock, page_path):
    class Handler(BaseHTTPRequestHandler):
        server_version = "wavesync-mock"

        def log_message(self, fmt, *args):
            if os.environ.get("MOCK_VERBOSE"):
                sys.stderr.write("mock: " + fmt % args + "\n")

        def send_json(self, obj, code=200):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path = urlparse(self.path).path
            if path == "/":
                with open(page_path, "rb") as f:
                    body = f.read()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Security-Policy", CSP)
                self.end_headers()
                self.wfile.write(body)
            elif path == "/api/status":
                self.send_json(mock.status())
            elif path == "/api/throughput":
                self.send_json(mock.throughput())
            elif path == "/api/events":
                self.events()
            else:
                self.send_json({"error": "no such endpoint"}, 404)

        def events(self):
            q = queue.Queue()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            with mock.lock:
                mock.clients.append(q)
            try:
                self.wfile.write(b": hello\n\n")
                self.wfile.flush()
                while True:
                    try:
                        ev = q.get(timeout=5)
                    except queue.Empty:
                        self.wfile.write(b": keep-alive\n\n")
                    else:
                        if ev is None:
                            break
                        self.wfile.write(b"event: tx\ndata: " + json.dumps(ev).encode() + b"\n\n")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                with mock.lock:
                    mock.clients.remove(q)
                self.close_connection = True

        def do_POST(self):
            url = urlparse(self.path)
            qs = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if url.path in ("/_mock/remote", "/_mock/local"):
                rows = int(qs["rows"]) if "rows" in qs else None
                self.send_json(mock.emit(url.path.rsplit("/", 1)[1], rows, qs.get("table")))
            elif url.path == "/_mock/drop-sse":
                mock.drop_streams()
                self.send_json({"dropped": True})
            elif url.path == "/_mock/daemon":
                with mock.lock:
                    mock.running = qs.get("running", "1") != "0"
                self.send_json({"running": mock.running})
            else:
                self.send_json({"error": "no such endpoint"}, 404)

    return Handler


def main():
    ap = argparse.ArgumentParser(description="mock of wavesyncd's HTTP API (see the top of this file)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080, help="0: a free port (see the LISTENING line)")
    ap.add_argument("--peers", type=int, default=2, help="connected peers")
    ap.add_argument("--disconnected", type=int, default=1, help="known peers that are not connected")
    ap.add_argument("--auto", type=float, default=0, help="emit an event every S seconds (0: only on POST)")
    ap.add_argument("--no-daemon", action="store_true", help='start with "daemon": null')
    ap.add_argument("--hostile", action="store_true", help="HTML-looking strings in the data")
    ap.add_argument("--page", default=DEFAULT_PAGE)
    args = ap.parse_args()

    mock = Mock(args)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(mock, args.page))
    server.daemon_threads = True

    def background():
        n = 0
        while True:
            time.sleep(1)
            mock.tick()
            n += 1
            if args.auto and n % max(1, round(args.auto)) == 0:
                mock.emit("remote" if mock.rng.random() < 0.7 else "local")

    threading.Thread(target=background, daemon=True).start()
    host, port = server.server_address[:2]
    print(f"LISTENING http://{host}:{port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
