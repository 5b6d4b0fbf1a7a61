"""Slow and hostile clients on loopback: connections that send their headers or their body a trickle at a time.

`SlowClients` opens `headers` connections that send a request line and then one header line every
`header_interval_s` (never the blank line that ends the headers), and `bodies` connections that send
complete headers announcing a body of `len(body)` bytes and then `body_rate` bytes per second. One
thread drives them all. For each connection it records when the server cut it (closed the socket or
answered, e.g. 408), in seconds after it opened, or None while it is still open.

Used by tests/integration/test_slow_clients.py and bench/slow_clients.py. Loopback only: the target is
always a server this process (or its test session) started.
"""
from __future__ import annotations

import select
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class _Conn:
    kind: str  # "headers" or "body"
    sock: socket.socket
    opened: float
    next_send: float
    sent: int = 0
    cut_after_s: float | None = None
    answer: bytes = b""


@dataclass
class SlowClients:
    host: str
    port: int
    path: str
    body: bytes
    headers: int = 8
    bodies: int = 8
    header_interval_s: float = 2.0
    body_rate: float = 1.0  # bytes per second
    conns: list[_Conn] = field(default_factory=list)

    def __enter__(self) -> "SlowClients":
        now = time.monotonic()
        for kind, n in (("headers", self.headers), ("body", self.bodies)):
            for _ in range(n):
                sock = socket.create_connection((self.host, self.port), timeout=5)
                if kind == "headers":
                    sock.sendall(f"POST {self.path} HTTP/1.1\r\nHost: {self.host}\r\n".encode())
                else:
                    sock.sendall((f"POST {self.path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                                  f"Content-Length: {len(self.body)}\r\n\r\n").encode())
                sock.setblocking(False)
                self.conns.append(_Conn(kind, sock, now, now + self._interval(kind)))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drive, name="slow-clients", daemon=True)
        self._thread.start()
        return self

    def _interval(self, kind: str) -> float:
        return self.header_interval_s if kind == "headers" else 1.0 / self.body_rate

    def _drive(self) -> None:
        while not self._stop.is_set():
            live = [c for c in self.conns if c.cut_after_s is None]
            if not live:
                return
            readable, _, _ = select.select([c.sock for c in live], [], [], 0.05)
            now = time.monotonic()
            for c in live:
                if c.sock in readable:
                    self._read(c, now)
                if c.cut_after_s is None and now >= c.next_send:
                    self._send(c, now)

    def _read(self, c: _Conn, now: float) -> None:
        try:
            chunk = c.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            c.answer += chunk  # an answer (408, 400) means the server gave up on the request
        c.cut_after_s = now - c.opened

    def _send(self, c: _Conn, now: float) -> None:
        if c.kind == "headers":
            data = f"X-Slow-{c.sent}: {'a' * 20}\r\n".encode()
        else:
            data = self.body[c.sent:c.sent + 1] or b" "
        try:
            c.sock.send(data)
            c.sent += 1
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            c.cut_after_s = now - c.opened
        c.next_send = now + self._interval(c.kind)

    def open_count(self, kind: str | None = None) -> int:
        return sum(c.cut_after_s is None for c in self.conns if kind in (None, c.kind))

    def cut_times(self, kind: str) -> list[float | None]:
        return [c.cut_after_s for c in self.conns if c.kind == kind]

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for c in self.conns:
            c.sock.close()
