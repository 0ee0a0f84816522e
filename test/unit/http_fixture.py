"""A real HTTP server on loopback for the HTTP client's unit tests.

Prints its port on the first line of stdout, then serves until killed.
Routes (POST): /ok -> 204, /status/N -> N, /retry-after -> 503 with
Retry-After: 7, /slow/MS -> sleeps then 200, /big -> 200 with 1 MB,
/redirect -> 302 to /ok, /echo -> 200 with the request as JSON.
GET /count -> "<requests> <connections>".
"""
import http.server
import json
import sys
import threading
import time

lock = threading.Lock()
requests = 0
connections = 0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        global connections
        super().setup()
        with lock:
            connections += 1

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/count":
            with lock:
                self.reply(200, f"{requests} {connections}".encode())
        else:
            self.reply(404)

    def do_POST(self):
        global requests
        length = int(self.headers.get("content-length", 0))
        body = self.rfile.read(length)
        with lock:
            requests += 1
        path = self.path
        if path == "/ok":
            self.reply(204)
        elif path.startswith("/status/"):
            self.reply(int(path.split("/")[2]), b"status body")
        elif path == "/retry-after":
            self.reply(503, b"busy", {"Retry-After": "7"})
        elif path.startswith("/slow/"):
            time.sleep(int(path.split("/")[2]) / 1000)
            self.reply(200, b"slow")
        elif path == "/big":
            self.reply(200, b"x" * (1024 * 1024))
        elif path == "/redirect":
            self.reply(302, b"", {"Location": "/ok"})
        elif path == "/echo":
            echo = {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body.decode()}
            self.reply(200, json.dumps(echo).encode(), {"content-type": "application/json"})
        else:
            self.reply(404)


server = http.server.ThreadingHTTPServer((sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
