"""Where each frame's bytes lie in a stored file, found once at ingest so WADO can ``pread`` them later.

Native pixel data: one contiguous run per frame. Encapsulated: the fragments of each frame, mapped with the
Extended Offset Table, the Basic Offset Table, one fragment per frame, or codec start markers, in that order.
"""
from __future__ import annotations

import struct
from typing import BinaryIO

from .errors import DicomError

ITEM = 0xE000FFFE  # (FFFE,E000) read as little-endian uint32 of group, element
SEQ_DELIM = 0xE0DDFFFE

# Codestream starts: JPEG and JPEG-LS SOI, JPEG 2000 SOC / JP2 box, HTJ2K share SOC.
_FRAME_STARTS = (b"\xff\xd8", b"\xff\x4f\xff\x51", b"\x00\x00\x00\x0cjP")

FrameIndex = list[list[list[int]]]  # frames -> fragments -> [offset, length]


def native_frame_index(value_offset: int, value_length: int, frame_bytes: int, frames: int) -> FrameIndex:
    if frame_bytes <= 0:
        raise DicomError("Pixel Data has no size: Rows, Columns or Bits Allocated is missing or zero.")
    needed = frame_bytes * frames
    if value_length < needed:
        raise DicomError(
            f"Pixel Data holds {value_length} bytes but {frames} frame(s) of {frame_bytes} bytes need {needed}: "
            "the file is truncated or Rows/Columns/Number of Frames are wrong."
        )
    return [[[value_offset + i * frame_bytes, frame_bytes]] for i in range(frames)]


def _read_items(fp: BinaryIO, start: int, file_size: int) -> list[tuple[int, int]]:
    """(offset, length) of every item of an encapsulated Pixel Data value, the Basic Offset Table first."""
    items: list[tuple[int, int]] = []
    pos = start
    while True:
        if pos + 8 > file_size:
            raise DicomError("Encapsulated Pixel Data ends without its sequence delimiter: the file is truncated.")
        fp.seek(pos)
        tag, length = struct.unpack("<II", fp.read(8))
        if tag == SEQ_DELIM:
            return items
        if tag != ITEM:
            raise DicomError(f"Unexpected tag {tag:08X} inside encapsulated Pixel Data at byte {pos}.")
        if length == 0xFFFFFFFF or pos + 8 + length > file_size:
            raise DicomError(
                f"A Pixel Data fragment at byte {pos} claims {length} bytes, past the end of the file ({file_size})."
            )
        items.append((pos + 8, length))
        pos += 8 + length


def encapsulated_frame_index(
    fp: BinaryIO, value_offset: int, file_size: int, frames: int, extended_offsets: list[int] | None = None
) -> FrameIndex:
    items = _read_items(fp, value_offset, file_size)
    if not items:
        raise DicomError("Encapsulated Pixel Data has no Basic Offset Table item.")
    bot_offset, bot_length = items[0]
    fragments = items[1:]
    if not fragments:
        raise DicomError("Encapsulated Pixel Data holds no fragments.")
    first_item_start = fragments[0][0] - 8

    def by_starts(starts: list[int]) -> FrameIndex:
        index: FrameIndex = [[] for _ in starts]
        for off, length in fragments:
            rel = off - 8 - first_item_start
            frame = max(i for i, s in enumerate(starts) if s <= rel)
            index[frame].append([off, length])
        return index

    if frames == 1:
        return [[[o, n] for o, n in fragments]]
    if extended_offsets and len(extended_offsets) == frames:
        return by_starts(list(extended_offsets))
    if bot_length:
        fp.seek(bot_offset)
        starts = list(struct.unpack(f"<{bot_length // 4}I", fp.read(bot_length - bot_length % 4)))
        if len(starts) == frames and starts[0] == 0:
            return by_starts(starts)
    if len(fragments) == frames:
        return [[[o, n]] for o, n in fragments]
    index: FrameIndex = []
    for off, length in fragments:
        fp.seek(off)
        head = fp.read(8)
        if not index or any(head.startswith(m) for m in _FRAME_STARTS):
            index.append([])
        index[-1].append([off, length])
    if len(index) != frames:
        raise DicomError(
            f"Cannot map {len(fragments)} Pixel Data fragments onto {frames} frames (no usable offset table)."
        )
    return index
