"""A small HTTP proxy between boto3 and a test S3 server that injects faults per S3 operation.

It recognises the operation from the method, the query string and ``x-amz-copy-source``, and
for queued faults answers instead of (or after) the server:

- ``"slowdown"``: 503 SlowDown, request not forwarded;
- ``"error500"``: 500 InternalError, not forwarded;
- ``"error200"``: 200 whose body is an ``<Error>`` (S3 does this on CompleteMultipartUpload);
- ``"drop"``: read half of the request body, then close the connection (request not forwarded);
- ``"lose_reply"``: forward the request (the server applies it), then close without answering;
- ``"nosuchupload"``: 404 NoSuchUpload, not forwarded (what S3 may answer a retried Complete);
- ``"corrupt"``: forward the request with one body byte flipped (a checksum must catch it).

Usage: ``with FaultProxy(server_url) as proxy: proxy.inject("UploadPart", "drop"); ... proxy.url``.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections import Counter, defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection", "upgrade", "te"}
_ERRORS = {
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "error500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "error200": (200, "InternalError", "We encountered an internal error. Please try again."),
    "nosuchupload": (404, "NoSuchUpload", "The specified upload does not exist."),
}


def operation(method: str, path: str, headers: dict[str, str]) -> str:
    """Name of the S3 operation a request is (the subset imgprep uses)."""
    query = parse_qs(urlsplit(path).query, keep_blank_values=True)
    if method == "PUT" and "partNumber" in query:
        return "UploadPartCopy" if "x-amz-copy-source" in headers else "UploadPart"
    if method == "PUT":
        return "CopyObject" if "x-amz-copy-source" in headers else "PutObject"
    if method == "POST" and "uploads" in query:
        return "CreateMultipartUpload"
    if method == "POST" and "uploadId" in query:
        return "CompleteMultipartUpload"
    if method == "DELETE" and "uploadId" in query:
        return "AbortMultipartUpload"
    if method == "GET" and "uploads" in query:
        return "ListMultipartUploads"
    if method == "GET" and "uploadId" in query:
        return "ListParts"
    return {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(method, method)


class FaultProxy:
    """Forwards to ``upstream`` (``http://host:port``) on a free loopback port, injecting queued faults."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.faults: dict[str, deque[str]] = defaultdict(deque)
        self.seen: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def inject(self, op: str, *actions: str) -> None:
        """Queue ``actions`` for the next requests of operation ``op``, one per request."""
        with self._lock:
            self.faults[op].extend(actions)

    def _next_fault(self, op: str) -> str | None:
        with self._lock:
            self.seen[op] += 1
            queue = self.faults.get(op)
            if queue:
                action = queue.popleft()
                self.injected[f"{op}:{action}"] += 1
                return action
            return None

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def _handle(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                op = operation(self.command, self.path, headers)
                action = proxy._next_fault(op)
                length = int(headers.get("content-length") or 0)
                if action == "drop":
                    self.rfile.read(length // 2)
                    self._kill()
                    return
                body = self.rfile.read(length) if length else b""
                if action in _ERRORS:
                    self._error(*_ERRORS[action])
                    return
                if action == "corrupt" and body:
                    flipped = bytearray(body)
                    flipped[len(body) // 2] ^= 0xFF
                    body = bytes(flipped)
                status, reason, reply_headers, reply = self._forward(body)
                if action == "lose_reply":
                    self._kill()
                    return
                self.send_response(status, reason)
                head = self.command == "HEAD"  # a HEAD reply keeps the server's Content-Length
                for name, value in reply_headers:
                    if name.lower() not in _HOP and (head or name.lower() != "content-length"):
                        self.send_header(name, value)
                if not head:
                    self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply)

            def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                try:
                    out = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                    conn.request(self.command, self.path, body=body if body else None, headers=out)
                    resp = conn.getresponse()
                    return resp.status, resp.reason, resp.getheaders(), resp.read()
                finally:
                    conn.close()

            def _error(self, status: int, code: str, message: str) -> None:
                xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                       f"<Message>{message}</Message><RequestId>faultproxy</RequestId></Error>").encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(xml)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(xml)

            def _kill(self) -> None:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        return Handler
