"""Read a ``multipart/related`` body (RFC 2387, RFC 2046 5.1) part by part into staging files.

STOW-RS bodies can be hundreds of megabytes: the body is read in chunks from a file-like stream and every
part's content is written straight to its own staging file, so memory use stays at about one chunk whatever
the size of the request. Django-free: the caller passes the stream and a function that opens staging files.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK = 1 << 20
MAX_HEADER_BYTES = 16 * 1024
# RFC 2046 5.1.1: 1-70 characters from a restricted set, not ending in a space.
_BOUNDARY = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$")


class MultipartError(ValueError):
    """The body is not well-formed multipart; ``reason`` says what is wrong, for a 400 answer."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class BodyTooLarge(MultipartError):
    """The body is longer than the limit the caller set (a 413 answer)."""


class Readable(Protocol):
    """``read(n)``; a stream that also has ``read1(n)`` (up to n bytes, b"" only at the end) is read with it."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(slots=True)
class Part:
    """One body part, its content in a staging file that the caller now owns."""

    index: int  # 1-based position in the body
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    path: Path | None = None
    size: int = 0

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


def check_boundary(boundary: str) -> str:
    if not boundary:
        raise MultipartError("The Content-Type has no boundary parameter: multipart/related needs one.")
    if not _BOUNDARY.match(boundary):
        raise MultipartError(f"The boundary {boundary[:80]!r} is not valid (RFC 2046: 1-70 characters).")
    return boundary


def _parse_headers(block: bytes, index: int) -> dict[str, str]:
    headers: dict[str, str] = {}
    try:
        text = block.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise MultipartError(f"Part {index} has undecodable headers.") from None
    for line in text.split("\r\n"):
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or name != name.strip():
            raise MultipartError(f"Part {index} has a malformed header line {line[:80]!r}.")
        headers[name.strip().lower()] = value.strip()
    return headers


class _Reader:
    """The stream's chunks, consumed from ``pos`` in ``buf``, with an optional limit on the total read.

    Part contents are written from the chunks as they come (no concatenation, no copies of the body in Python);
    only boundary lines and headers that straddle two chunks are joined.
    """

    def __init__(self, stream: Readable, max_bytes: int | None):
        self.stream = stream
        self.max_bytes = max_bytes
        self.total = 0
        self.eof = False
        # A virtual CRLF before the body lets the first delimiter be matched like every other one.
        self.buf = b"\r\n"
        self.pos = 0

    def read_chunk(self) -> bytes:
        """The next chunk of the stream; b"" at its end."""
        if self.eof:
            return b""
        read1 = getattr(self.stream, "read1", None)  # whatever has arrived, without joining it into CHUNK bytes
        chunk = read1(CHUNK) if read1 is not None else self.stream.read(CHUNK)
        if not chunk:
            self.eof = True
            return b""
        self.total += len(chunk)
        if self.max_bytes is not None and self.total > self.max_bytes:
            raise BodyTooLarge(f"The request body is larger than the limit of {self.max_bytes} bytes.")
        return chunk

    def fill(self) -> bool:
        """Append one chunk to what is left of the buffer; False at the end of the stream."""
        chunk = self.read_chunk()
        if not chunk:
            return False
        self.buf = self.buf[self.pos:] + chunk if self.pos < len(self.buf) else chunk
        self.pos = 0
        return True

    @property
    def left(self) -> int:
        return len(self.buf) - self.pos


def iter_parts(
    stream: Readable,
    boundary: str,
    open_staging: Callable[[], tuple[BinaryIO, Path]],
    *,
    max_bytes: int | None = None,
) -> Iterator[Part]:
    """Yield each part once its content is completely written to a staging file.

    Raises :class:`MultipartError` for a body that is not well-formed; the part being read when that happens
    has its staging file removed, parts already yielded belong to the caller.
    """
    delimiter = b"\r\n--" + check_boundary(boundary).encode("ascii")
    reader = _Reader(stream, max_bytes)
    _find_first(reader, delimiter)
    index = 0
    while True:
        reader.pos += len(delimiter)
        while reader.left < 2 and reader.fill():
            pass
        if reader.buf[reader.pos : reader.pos + 2] == b"--":
            if index == 0:
                raise MultipartError("The multipart body has no parts.")
            return
        _skip_padding(reader)
        index += 1
        headers = _read_headers(reader, index)
        part = Part(index=index, headers=headers)
        fp, part.path = open_staging()
        try:
            with fp:
                _copy_body(reader, delimiter, fp, part)
        except BaseException:
            part.path.unlink(missing_ok=True)
            raise
        yield part


def _find_first(reader: _Reader, delimiter: bytes) -> None:
    """Skip the preamble: ``reader.pos`` ends at the first delimiter."""
    while True:
        pos = reader.buf.find(delimiter, reader.pos)
        if pos >= 0:
            reader.pos = pos
            return
        if reader.total > MAX_HEADER_BYTES and len(reader.buf) > MAX_HEADER_BYTES:
            raise MultipartError("The body does not contain the boundary named in the Content-Type.")
        if not reader.fill():
            if reader.total == 0:
                raise MultipartError("The request body is empty.")
            raise MultipartError("The body does not contain the boundary named in the Content-Type.")


def _skip_padding(reader: _Reader) -> None:
    """After a delimiter: optional linear white space, then CRLF. ``reader.pos`` ends at that CRLF."""
    while True:
        end = reader.buf.find(b"\r\n", reader.pos)
        if end >= 0:
            if reader.buf[reader.pos:end].strip(b" \t"):
                raise MultipartError("A boundary line is followed by unexpected characters (wrong boundary?).")
            reader.pos = end
            return
        if reader.left > 1024 or not reader.fill():
            raise MultipartError("A boundary line is not terminated by CRLF: the body is truncated or malformed.")


def _read_headers(reader: _Reader, index: int) -> dict[str, str]:
    """``reader.pos`` is at the CRLF that ends the boundary line; it ends where the content starts."""
    while True:
        end = reader.buf.find(b"\r\n\r\n", reader.pos)
        if end >= 0:
            headers = _parse_headers(reader.buf[reader.pos + 2 : end], index)
            reader.pos = end + 4
            return headers
        if reader.left > MAX_HEADER_BYTES:
            raise MultipartError(f"The headers of part {index} are longer than {MAX_HEADER_BYTES} bytes.")
        if not reader.fill():
            raise MultipartError(f"Part {index} ends inside its headers: the body is truncated.")


def _copy_body(reader: _Reader, delimiter: bytes, fp: BinaryIO, part: Part) -> None:
    """Write the content up to the next delimiter, where ``reader.pos`` ends.

    The content is written from the chunks themselves. A delimiter may straddle two chunks: the last
    ``len(delimiter) - 1`` bytes of a chunk are held back until the start of the next one shows whether a
    delimiter begins among them (only then are the two joined)."""
    keep = len(delimiter) - 1
    buf, pos = reader.buf, reader.pos
    while True:
        found = buf.find(delimiter, pos)
        if found >= 0:
            if found > pos:
                fp.write(memoryview(buf)[pos:found])
                part.size += found - pos
            reader.buf, reader.pos = buf, found
            return
        safe = max(pos, len(buf) - keep)
        if safe > pos:
            fp.write(memoryview(buf)[pos:safe])
            part.size += safe - pos
        tail = buf[safe:]
        chunk = reader.read_chunk()
        if not chunk:
            reader.buf, reader.pos = tail, 0
            raise MultipartError(
                f"Part {part.index} is not followed by a boundary: the body is truncated or the closing "
                "boundary is missing."
            )
        if tail and (len(chunk) < keep or delimiter in tail + chunk[:keep]):
            buf = tail + chunk  # a delimiter (or too little to tell) across the two: join them
        else:
            if tail:
                fp.write(tail)
                part.size += len(tail)
            buf = chunk
        pos = 0
