"""Reading one HTTP/1.1 response off a raw socket (for requests an HTTP client will not send,
such as headers that promise a body which never comes)."""

from __future__ import annotations

import socket


def read_response(sock: socket.socket) -> str:
    """The status line, headers and body (by Content-Length), however the bytes arrive."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data.decode("latin-1")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return (head + b"\r\n\r\n" + body).decode("latin-1")
