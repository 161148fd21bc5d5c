"""archive.multipart on its own: contents come out byte for byte however the body is cut into chunks."""
from __future__ import annotations

import io
import os
import random
import tempfile
from pathlib import Path

import pytest

from archive import multipart
from archive.multipart import MultipartError, iter_parts
from tests.archive.ingest_helpers import multipart as build

BOUNDARY = "lightbox-test-boundary"


class Chunked:
    """A stream that answers every read with at most ``sizes[i]`` bytes (cycling), like a network body."""

    def __init__(self, data: bytes, sizes: list[int]):
        self.data, self.sizes, self.pos, self.n = data, sizes, 0, 0

    def read(self, size: int = -1, /) -> bytes:
        take = self.sizes[self.n % len(self.sizes)]
        self.n += 1
        if size >= 0:
            take = min(take, size)
        out = self.data[self.pos:self.pos + take]
        self.pos += len(out)
        return out


def _read_all(stream, tmp_path: Path, **kw) -> list[bytes]:
    def staging():
        fd, name = tempfile.mkstemp(dir=tmp_path)
        return os.fdopen(fd, "wb"), Path(name)

    out = []
    for part in iter_parts(stream, BOUNDARY, staging, **kw):
        data = part.path.read_bytes()
        assert part.size == len(data)
        out.append(data)
        part.path.unlink()
    return out


def _contents(seed: int) -> list[bytes]:
    """Parts full of near-delimiters: CRLF, dashes, the boundary without its CRLF, a delimiter one byte short."""
    rnd = random.Random(seed)
    tricky = [b"\r\n", b"\r\n-", b"\r\n--", b"--" + BOUNDARY.encode(), b"\r\n--" + BOUNDARY[:-1].encode(),
              b"\r\n--" + BOUNDARY.encode()[:10], b"\r", b"-"]
    parts = []
    for _ in range(rnd.randint(1, 5)):
        chunks = [rnd.choice(tricky) if rnd.random() < 0.3 else os.urandom(rnd.randint(0, 300)) for _ in range(20)]
        content = b"".join(chunks)
        parts.append(content.replace(b"\r\n--" + BOUNDARY.encode(), b"\r\n-" + BOUNDARY.encode()))
    return parts


@pytest.mark.parametrize("sizes", [[1], [2, 3], [7], [len(BOUNDARY) + 3], [len(BOUNDARY) + 4, 1], [100, 5, 1],
                                   [1 << 20], [4096, 17]])
def test_parts_come_out_byte_for_byte_whatever_the_chunks(tmp_path, sizes):
    for seed in range(12):
        parts = _contents(seed)
        body, _ = build(parts, BOUNDARY)
        assert _read_all(Chunked(body, sizes), tmp_path) == parts, (sizes, seed)


def test_large_parts_across_small_chunk_limits(tmp_path, monkeypatch):
    monkeypatch.setattr(multipart, "CHUNK", 1000)  # parts span many chunks, delimiters fall anywhere in them
    parts = [os.urandom(n) for n in (0, 1, 999, 1000, 1001, 5000, 12345)]
    body, _ = build(parts, BOUNDARY)
    for shift in range(0, 60, 7):  # move every delimiter across chunk edges
        preamble = b"x" * shift + b"\r\n"
        assert _read_all(io.BytesIO(preamble + body), tmp_path) == parts


@pytest.mark.parametrize(("body", "words"), [
    (b"", "empty"),
    (b"--other\r\n\r\nabc\r\n--other--\r\n", "boundary"),
    (f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\nabc".encode(), "not followed by a boundary"),
    (f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n".encode(), "ends inside its headers"),
    (f"--{BOUNDARY}--\r\n".encode(), "no parts"),
    (f"--{BOUNDARY}junk\r\n\r\nabc\r\n--{BOUNDARY}--\r\n".encode(), "unexpected characters"),
])
def test_malformed_bodies_are_refused_with_a_reason(tmp_path, body, words):
    for sizes in ([1], [3], [1 << 20]):
        with pytest.raises(MultipartError) as caught:
            _read_all(Chunked(body, sizes), tmp_path)
        assert words in caught.value.reason
    assert list(tmp_path.iterdir()) == []  # the part being read had its staging file removed


def test_the_size_limit_counts_the_whole_body(tmp_path):
    body, _ = build([b"a" * 5000], BOUNDARY)
    with pytest.raises(multipart.BodyTooLarge):
        _read_all(Chunked(body, [512]), tmp_path, max_bytes=len(body) - 1)
    assert _read_all(Chunked(body, [512]), tmp_path, max_bytes=len(body)) == [b"a" * 5000]
