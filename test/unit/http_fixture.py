"""A real HTTP server on loopback for the HTTP client's unit tests.

Usage: http_fixture.py [HOST [CERT KEY]]   (HOST defaults to 127.0.0.1; with
CERT and KEY it speaks HTTPS). Binds port 0, prints the chosen port on the
first line of stdout, then serves until killed.

Routes (POST, HTTP/1.1 keep-alive):
  /ok              -> 204
  /status/N        -> N with body "status body"
  /retry-after     -> 503 with "Retry-After: 7"
  /retry-after-odd -> 429 with "rEtRy-AfTeR:   120  " (case and blanks)
  /slow/MS         -> sleeps MS milliseconds, then 200
  /big             -> 200 with a 1 MB body
  /endless         -> 200 with a chunked body that never ends (until the
                      client goes away)
  /redirect        -> 302 with Location: /ok
  /garbage         -> bytes that are no HTTP response, then the connection closes
  /header-bomb     -> 200 with 400 kB of headers (over max_read; libcurl refuses over 300 kB)
  /echo            -> 200 with the request (method, path, headers, body) as JSON
A request with "Expect: 100-continue" gets an interim "100 Continue" that
carries "Retry-After: 99" (which must not leak into the final response).
GET /count -> "<POST requests served> <connections accepted>".
"""
import http.server
import json
import ssl
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

    def handle_expect_100(self):
        self.send_response_only(100)
        self.send_header("Retry-After", "99")
        self.end_headers()
        return True

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

    def endless(self):
        self.send_response(200)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        chunk = b"y" * 65536
        framed = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                self.wfile.write(framed)
        except OSError:
            pass  # the client cut the transfer off
        self.close_connection = True

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
        elif path == "/retry-after-odd":
            self.reply(429, b"slow down", {"rEtRy-AfTeR": "  120  "})
        elif path.startswith("/slow/"):
            time.sleep(int(path.split("/")[2]) / 1000)
            self.reply(200, b"slow")
        elif path == "/big":
            self.reply(200, b"x" * (1024 * 1024))
        elif path == "/endless":
            self.endless()
        elif path == "/redirect":
            self.reply(302, b"", {"Location": "/ok"})
        elif path == "/header-bomb":
            self.send_response(200)
            for i in range(400):
                self.send_header("x-bomb-%d" % i, "a" * 1000)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/garbage":
            self.wfile.write(b"garbage, no status line\r\n")
            self.wfile.flush()
            self.close_connection = True
        elif path == "/echo":
            echo = {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "length": len(body),
                "body": body.decode("latin-1"),
            }
            self.reply(200, json.dumps(echo).encode(), {"content-type": "application/json"})
        else:
            self.reply(404)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many concurrent connects without SYN drops
    tls = None

    def finish_request(self, request, client_address):
        # The TLS handshake runs in the connection's thread, not the accept loop.
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return  # e.g. the client rejected our certificate
        try:
            self.RequestHandlerClass(request, client_address, self)
        finally:
            if self.tls is not None:
                request.close()


def main():
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    server = Server((host, 0), Handler)
    if len(sys.argv) > 3:
        server.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.tls.load_cert_chain(sys.argv[2], sys.argv[3])
    print(server.server_address[1], flush=True)
    server.serve_forever()


main()
