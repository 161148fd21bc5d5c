"""Run-length encoding of label slabs for ``partial_mask`` events (browser-decodable, no library needed).

Format ``rle-u8-u32le`` (version 1): the label array (uint8) is flattened in C order, (slice, row, column),
and stored as consecutive 5-byte runs: 1 byte label value, then 4 bytes run length, unsigned little endian.
Runs may cross rows and slices. The bytes travel base64-encoded. Decoding in the browser::

    const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
    const view = new DataView(bytes.buffer);
    const out = new Uint8Array(shape[0] * shape[1] * shape[2]);
    for (let off = 0, pos = 0; off < bytes.length; off += 5) {
      const value = view.getUint8(off), length = view.getUint32(off + 1, true);
      out.fill(value, pos, pos + length); pos += length;
    }
"""

from __future__ import annotations

import base64

import numpy as np

__all__ = ["RLE_ENCODING", "rle_encode", "rle_decode", "rle_encode_b64", "rle_decode_b64"]

RLE_ENCODING = "rle-u8-u32le"
_RUN = np.dtype([("value", "u1"), ("length", "<u4")])


def rle_encode(labels: np.ndarray) -> bytes:
    """Encode a uint8 array (any shape, C order) as 5-byte runs."""
    if labels.dtype != np.uint8:
        raise TypeError(f"labels must be uint8, got {labels.dtype}.")
    flat = np.ascontiguousarray(labels).ravel()
    if flat.size == 0:
        return b""
    starts = np.concatenate([[0], np.flatnonzero(flat[1:] != flat[:-1]) + 1])
    lengths = np.diff(np.concatenate([starts, [flat.size]]))
    runs = np.empty(starts.size, dtype=_RUN)
    runs["value"] = flat[starts]
    runs["length"] = lengths
    return runs.tobytes()


def rle_decode(data: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`rle_encode`; checks the runs cover exactly ``shape``."""
    if len(data) % _RUN.itemsize:
        raise ValueError(f"RLE data length {len(data)} is not a multiple of {_RUN.itemsize}.")
    runs = np.frombuffer(data, dtype=_RUN)
    total = int(np.prod(shape))
    if int(runs["length"].sum()) != total:
        raise ValueError(f"RLE runs cover {int(runs['length'].sum())} voxels, shape {shape!r} has {total}.")
    return np.repeat(runs["value"], runs["length"].astype(np.int64)).reshape(shape)


def rle_encode_b64(labels: np.ndarray) -> str:
    return base64.b64encode(rle_encode(labels)).decode("ascii")


def rle_decode_b64(data: str, shape: tuple[int, ...]) -> np.ndarray:
    return rle_decode(base64.b64decode(data), shape)
