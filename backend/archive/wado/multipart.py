"""multipart/related bodies (RFC 2387, PS3.18 8.6.1.2) written part by part, so a study never sits in memory.

Each part is ``--boundary CRLF headers CRLF CRLF body CRLF``; the body ends with ``--boundary-- CRLF``. Part heads
carry Content-Length, so the total length is known in advance whenever every part's size is.
"""
from __future__ import annotations

import secrets


def new_boundary() -> str:
    return f"lightbox-{secrets.token_hex(12)}"


def content_type(inner_type: str, boundary: str) -> str:
    return f'multipart/related; type="{inner_type}"; boundary={boundary}'


def part_head(boundary: str, part_type: str, length: int | None = None, extra: dict[str, str] | None = None) -> bytes:
    lines = [f"--{boundary}", f"Content-Type: {part_type}"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    for name, value in (extra or {}).items():
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


PART_END = b"\r\n"


def tail(boundary: str) -> bytes:
    return f"--{boundary}--\r\n".encode("latin-1")


def body_length(boundary: str, parts: list[tuple[str, int]]) -> int:
    """Total size of a body whose parts are ``(part content type, body length)``."""
    return sum(len(part_head(boundary, t, n)) + n + len(PART_END) for t, n in parts) + len(tail(boundary))


def join(boundary: str, parts: list[tuple[str, bytes]]) -> bytes:
    """A whole (small) multipart body from parts in memory."""
    chunks: list[bytes] = []
    for part_type, data in parts:
        chunks += [part_head(boundary, part_type, len(data)), data, PART_END]
    chunks.append(tail(boundary))
    return b"".join(chunks)
