"""Re-encode a stored instance or its frames as Explicit VR Little Endian, through pydicom and its plugins.

Used when a client asks for uncompressed data and the file is stored compressed (JPEG, JPEG-LS, JPEG 2000,
HTJ2K, RLE), deflated, or in a syntax the web must not carry (implicit VR, big endian: PS3.18 8.7.3). The SOP
Instance UID is kept: the pixels are those of the stored instance (lossy data stays marked lossy).
"""
from __future__ import annotations

import io
import warnings
from collections.abc import Iterable
from typing import BinaryIO

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels import iter_pixels, pack_bits, pixel_array
from pydicom.uid import ExplicitVRLittleEndian

from .syntaxes import BIG_ENDIAN, DEFLATED, NATIVE

PIXEL_DATA = 0x7FE00010
# Binary VRs pydicom keeps as raw bytes: their words must be swapped when leaving big endian.
_WORD_SIZE = {"OW": 2, "OL": 4, "OF": 4, "OD": 8, "OV": 8}


class TranscodeError(Exception):
    """The stored data cannot be decoded (corrupt, or a codec that is not installed)."""


def _little_endian_bytes(arr: np.ndarray, bits_allocated: int) -> bytes:
    if bits_allocated == 1:
        return pack_bits(arr)
    return np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"), copy=False)).tobytes()


def decoded_frames(src: str | BinaryIO, stored_ts: str, indices: Iterable[int], bits_allocated: int) -> list[bytes]:
    """Frames (0-based ``indices``) decoded to native little-endian bytes, colour as RGB, pixel-interleaved."""
    indices = list(indices)
    order = sorted(set(indices))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if stored_ts == DEFLATED:  # no byte offsets inside a deflated body: inflate the data set first
                src = pydicom.dcmread(src)
            arrays = dict(zip(order, iter_pixels(src, indices=order, as_rgb=True), strict=True))
    except Exception as exc:  # codec errors come as many types: RuntimeError, ValueError, NotImplementedError...
        raise TranscodeError(f"the stored pixel data cannot be decoded: {exc}") from exc
    return [_little_endian_bytes(arrays[i], bits_allocated) for i in indices]


def _swap_words(ds: Dataset) -> None:
    """Swap the bytes of raw binary values (OW, OL, OF, OD, OV) everywhere but Pixel Data, for little endian."""
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                _swap_words(item)
        elif elem.tag != PIXEL_DATA and elem.VR in _WORD_SIZE and isinstance(elem.value, bytes) and elem.value:
            size = _WORD_SIZE[elem.VR]
            usable = len(elem.value) - len(elem.value) % size
            swapped = np.frombuffer(elem.value[:usable], dtype=f">u{size}").astype(f"<u{size}").tobytes()
            elem.value = swapped + elem.value[usable:]


def _from_big_endian(ds: Dataset) -> None:
    if PIXEL_DATA in ds:
        bits = int(ds.get("BitsAllocated", 8) or 8)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = pixel_array(ds, raw=True)  # stored values, colour space untouched, samples interleaved
        data = _little_endian_bytes(arr.ravel() if bits == 1 else arr, bits)
        if int(ds.get("SamplesPerPixel", 1) or 1) > 1:
            ds.PlanarConfiguration = 0
        if len(data) % 2:
            data += b"\0"
        ds.PixelData = data
        ds["PixelData"].VR = "OW" if bits > 8 else "OB"
    _swap_words(ds)


def to_explicit_little_endian(src: str | BinaryIO, stored_ts: str) -> bytes:
    """A PS3.10 file of the instance in Explicit VR Little Endian (decompressed when stored compressed)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(src)
            if stored_ts not in NATIVE and PIXEL_DATA in ds:
                ds.decompress(generate_instance_uid=False, as_rgb=True)
            elif stored_ts == BIG_ENDIAN:
                _from_big_endian(ds)
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            if "FileMetaInformationGroupLength" in ds.file_meta:
                del ds.file_meta.FileMetaInformationGroupLength
            out = io.BytesIO()
            if stored_ts == BIG_ENDIAN:  # every value is re-encoded; the file meta and preamble are kept
                pydicom.dcmwrite(out, ds, implicit_vr=False, little_endian=True, force_encoding=True)
            else:
                pydicom.dcmwrite(out, ds, implicit_vr=False, little_endian=True, enforce_file_format=True)
    except Exception as exc:
        raise TranscodeError(f"the stored instance cannot be converted to Explicit VR Little Endian: {exc}") from exc
    return out.getvalue()
