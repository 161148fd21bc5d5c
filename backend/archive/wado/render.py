"""Rendered images (PS3.18 9.5, 8.3.5.1): one frame to JPEG, PNG or GIF, with window, viewport and quality.

The grayscale pipeline follows PS3.4 N.2: stored values -> Modality LUT (rescale, or a Modality LUT Sequence)
-> VOI (the ``window`` parameter, else the instance's own window or VOI LUT, else the frame's range) -> 8 bits,
inverted for MONOCHROME1. Per-frame values of enhanced multi-frame objects (functional groups) win over the
top-level ones. Colour (RGB, YBR_*, PALETTE COLOR) is shown as RGB.
"""
from __future__ import annotations

import io
import math
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import orjson
import pydicom
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, pixel_array

RENDERED_TYPES = ["image/jpeg", "image/png", "image/gif"]
_PIL_FORMAT = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF"}
MAX_VIEWPORT = 4096
DEFAULT_QUALITY = 90
WINDOW_FUNCTIONS = {"linear": "LINEAR", "linear-exact": "LINEAR_EXACT", "sigmoid": "SIGMOID"}


class RenderError(ValueError):
    """A rendering parameter with a value the standard does not allow (answered 400)."""


class RenderFailure(Exception):
    """The stored pixel data cannot be decoded or shown."""


@dataclass(frozen=True, slots=True)
class Viewport:
    width: int | None
    height: int | None
    sx: float | None = None
    sy: float | None = None
    sw: float | None = None
    sh: float | None = None


@dataclass(frozen=True, slots=True)
class RenderParams:
    media_type: str = "image/jpeg"
    quality: int | None = None
    viewport: Viewport | None = None
    window: tuple[float, float, str] | None = None  # center, width, LINEAR / LINEAR_EXACT / SIGMOID

    def cache_key(self) -> str:
        return f"{self.media_type}|{self.quality}|{self.viewport}|{self.window}"


def _numbers(value: str, name: str, count_min: int, count_max: int) -> list[str]:
    parts = [p.strip() for p in value.split(",")]
    if not count_min <= len(parts) <= count_max:
        raise RenderError(f"{name}={value[:60]!r}: expected {count_min} to {count_max} comma-separated values.")
    return parts


def _float(text: str, name: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise RenderError(f"{name}: {text[:30]!r} is not a number.") from None
    if not math.isfinite(number):
        raise RenderError(f"{name}: {text[:30]!r} is not a finite number.")
    return number


def parse_viewport(value: str) -> Viewport:
    """``vw,vh[,sx,sy,sw,sh]`` (PS3.18 8.3.5.1.3); one of vw, vh may be empty (aspect ratio kept)."""
    parts = _numbers(value, "viewport", 2, 6)
    if len(parts) not in (2, 6):
        raise RenderError("viewport takes vw,vh or vw,vh,sx,sy,sw,sh.")
    size: list[int | None] = []
    for text in parts[:2]:
        if text == "":
            size.append(None)
            continue
        if not text.isdigit() or not 1 <= int(text) <= MAX_VIEWPORT:
            raise RenderError(f"viewport: {text[:20]!r} is not a size between 1 and {MAX_VIEWPORT} pixels.")
        size.append(int(text))
    if size[0] is None and size[1] is None:
        raise RenderError("viewport needs at least one of vw and vh.")
    region = [None if t == "" else _float(t, "viewport") for t in parts[2:]]
    if region and ((region[0] or 0) < 0 or (region[1] or 0) < 0):
        raise RenderError("viewport: sx and sy must not be negative.")
    return Viewport(size[0], size[1], *region)


def parse_window(value: str) -> tuple[float, float, str]:
    """``center,width[,function]`` with function linear (default), linear-exact or sigmoid."""
    parts = _numbers(value, "window", 2, 3)
    center, width = _float(parts[0], "window center"), _float(parts[1], "window width")
    function = parts[2].lower() if len(parts) == 3 and parts[2] else "linear"
    if function not in WINDOW_FUNCTIONS:
        raise RenderError(f"window function {function[:20]!r} is not one of {', '.join(WINDOW_FUNCTIONS)}.")
    if width <= 0 or (function == "linear" and width < 1):
        raise RenderError("window width must be positive (at least 1 for the linear function).")
    return center, width, WINDOW_FUNCTIONS[function]


def parse_params(query, media_type: str, default_viewport: tuple[int, int] | None = None) -> RenderParams:
    """Read quality, viewport and window from the query string; unknown parameters are ignored (PS3.18 8.3)."""
    quality = None
    if (text := query.get("quality")) is not None:
        if not text.strip().isdigit() or not 1 <= int(text) <= 100:
            raise RenderError(f"quality={text[:20]!r}: expected an integer from 1 to 100.")
        quality = int(text)
    viewport = parse_viewport(query["viewport"]) if query.get("viewport") else None
    if viewport is None and default_viewport is not None:
        viewport = Viewport(*default_viewport)
    window = parse_window(query["window"]) if query.get("window") else None
    return RenderParams(media_type=media_type, quality=quality, viewport=viewport, window=window)


def _item(ds: Dataset, keyword: str) -> Dataset | None:
    seq = ds.get(keyword)
    return seq[0] if seq else None


def _functional(ds: Dataset, frame: int, sequence: str) -> Dataset | None:
    """The item of a functional group macro for a frame: per-frame first, then shared."""
    for groups, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        seq = ds.get(groups)
        if seq and len(seq) > index and (item := _item(seq[index], sequence)) is not None:
            return item
    return None


def _first(value) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, pydicom.multival.MultiValue):
        value = value[0] if len(value) else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _window(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """PS3.3 C.11.2.1.2 window functions, to 0..1."""
    if function == "SIGMOID":
        with np.errstate(over="ignore"):  # far below the center: exp overflows to inf, the value is 0 as it should
            return 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    if function == "LINEAR_EXACT":
        return np.clip((values - center) / width + 0.5, 0.0, 1.0)
    if width <= 1:
        return (values > center - 0.5).astype(np.float32)
    return np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def _grayscale(ds: Dataset, arr: np.ndarray, frame: int, window: tuple[float, float, str] | None) -> np.ndarray:
    pixel_transform = _functional(ds, frame, "PixelValueTransformationSequence")
    if pixel_transform is not None and "RescaleSlope" in pixel_transform:
        slope = _first(pixel_transform.get("RescaleSlope")) or 1.0
        intercept = _first(pixel_transform.get("RescaleIntercept")) or 0.0
        values = arr.astype(np.float32) * slope + intercept
    elif "ModalityLUTSequence" in ds or "RescaleSlope" in ds or "RescaleIntercept" in ds:
        values = apply_modality_lut(arr, ds).astype(np.float32)
    else:
        values = arr.astype(np.float32)
    if window is None:
        voi = _functional(ds, frame, "FrameVOILUTSequence") or ds
        center, width = _first(voi.get("WindowCenter")), _first(voi.get("WindowWidth"))
        function = str(voi.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
        if center is not None and width is not None and width > 0:
            window = (center, max(width, 1.0) if function == "LINEAR" else width, function)
        elif "VOILUTSequence" in ds:
            lut = apply_voi_lut(values.astype(np.int64) if values.dtype.kind == "f" else values, ds, prefer_lut=True)
            lut = lut.astype(np.float32)
            low, high = float(lut.min()), float(lut.max())
            scaled = (lut - low) / (high - low) if high > low else np.zeros_like(lut)
            return _monochrome1(ds, scaled)
    if window is None:
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    else:
        scaled = _window(values, *window)
    return _monochrome1(ds, scaled)


def _monochrome1(ds: Dataset, scaled: np.ndarray) -> np.ndarray:
    if str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1":
        scaled = 1.0 - scaled
    return np.rint(scaled * 255.0).astype(np.uint8)


def _colour(ds: Dataset, arr: np.ndarray) -> np.ndarray:
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if photometric == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
    if arr.dtype != np.uint8:
        top = float(arr.max()) if arr.size else 0.0
        bits = int(ds.get("BitsStored", 8) or 8)
        if photometric == "PALETTE COLOR":
            bits = 16 if top > 255 else 8
        arr = np.clip(arr.astype(np.float32) / float((1 << bits) - 1) * 255.0, 0, 255).astype(np.uint8)
    return arr


def _apply_viewport(image: Image.Image, viewport: Viewport | None) -> Image.Image:
    if viewport is None:
        return image
    if viewport.sx is not None or viewport.sy is not None or viewport.sw is not None or viewport.sh is not None:
        sx, sy = viewport.sx or 0.0, viewport.sy or 0.0
        sw = viewport.sw if viewport.sw is not None else image.width - sx
        sh = viewport.sh if viewport.sh is not None else image.height - sy
        left, right = sorted((sx, sx + sw))
        top, bottom = sorted((sy, sy + sh))
        box = (max(0, int(left)), max(0, int(top)), min(image.width, int(math.ceil(right))),
               min(image.height, int(math.ceil(bottom))))
        if box[2] <= box[0] or box[3] <= box[1]:
            raise RenderError("viewport: the source region lies outside the image.")
        image = image.crop(box)
        if sw < 0:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if sh < 0:
            image = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    scales = [s for s in (viewport.width and viewport.width / image.width, viewport.height and viewport.height / image.height) if s]
    scale = min(scales)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if size != image.size:
        image = image.resize(size, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BILINEAR,
                             reducing_gap=3.0 if scale < 0.5 else None)
    return image


# ------------------------------------------------------------------ native grayscale frames without pydicom
NATIVE_LITTLE_ENDIAN = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}
# the attributes the grayscale pipeline reads, by tag in the stored DICOM JSON
_SIMPLE = {
    "00280002": "SamplesPerPixel", "00280004": "PhotometricInterpretation", "00280010": "Rows",
    "00280011": "Columns", "00280100": "BitsAllocated", "00280101": "BitsStored",
    "00280103": "PixelRepresentation", "00281050": "WindowCenter", "00281051": "WindowWidth",
    "00281056": "VOILUTFunction", "00281052": "RescaleIntercept", "00281053": "RescaleSlope",
    "00281054": "RescaleType",
}
# present in an instance: take the general path (Modality or VOI LUT sequences, functional groups)
_GENERAL_ONLY = {"00283000", "00283010", "52009229", "52009230"}


_ATTRIBUTES: OrderedDict[tuple, Dataset | None] = OrderedDict()
ATTRIBUTES_CACHE_SIZE = 256
_ATTRIBUTES_LOCK = threading.Lock()


def attributes_from_metadata(metadata: bytes) -> Dataset | None:
    """The attributes a plain grayscale rendering reads, from the DICOM JSON stored at ingest (no file read).
    None when the instance needs the general path (colour, LUT sequences, functional groups, multi-frame).

    The slices of a series share these values: the dataset made for one set of values is kept (read only, at
    most ATTRIBUTES_CACHE_SIZE of them), since making a pydicom Dataset costs more than reading the JSON."""
    try:
        meta = orjson.loads(metadata)
    except orjson.JSONDecodeError:
        return None
    if any(tag in meta for tag in _GENERAL_ONLY):
        return None
    values = [(tag, meta.get(tag, {}).get("Value")) for tag in _SIMPLE]
    try:
        key = tuple((tag, tuple(value)) for tag, value in values if value)
        hash(key)
    except TypeError:
        key = None
    if key is not None:
        with _ATTRIBUTES_LOCK:
            if key in _ATTRIBUTES:
                return _ATTRIBUTES[key]
    ds = Dataset()
    for tag, value in values:
        if value:
            setattr(ds, _SIMPLE[tag], value if len(value) > 1 else value[0])
    if (ds.get("SamplesPerPixel", 1) != 1 or ds.get("BitsAllocated") not in (8, 16)
            or str(ds.get("PhotometricInterpretation", "")).strip() not in {"MONOCHROME1", "MONOCHROME2"}):
        ds = None
    if key is not None:
        with _ATTRIBUTES_LOCK:
            _ATTRIBUTES[key] = ds
            while len(_ATTRIBUTES) > ATTRIBUTES_CACHE_SIZE:
                _ATTRIBUTES.popitem(last=False)
    return ds


def native_frame(ds: Dataset, data: bytes) -> np.ndarray | None:
    """One native little-endian frame as pydicom's ``pixel_array`` gives it (unused high bits corrected)."""
    rows, cols, bits = int(ds.Rows), int(ds.Columns), int(ds.BitsAllocated)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    stored = int(ds.get("BitsStored", bits) or bits)
    if len(data) != rows * cols * bits // 8 or not 1 <= stored <= bits:
        return None
    arr = np.frombuffer(data, dtype=f"<{'i' if signed else 'u'}{bits // 8}").reshape(rows, cols)
    if stored < bits:
        shift = bits - stored
        arr = (arr << shift) >> shift if signed else arr & ((1 << stored) - 1)
    return arr


_LUTS: OrderedDict[tuple, np.ndarray] = OrderedDict()
LUT_CACHE_SIZE = 64
_LUTS_LOCK = threading.Lock()


def _lookup_table(ds: Dataset, dtype: np.dtype, window: tuple[float, float, str] | None) -> np.ndarray | None:
    """The grayscale pipeline applied once to every value an 8 or 16-bit pixel can hold, indexed by the pixel's
    unsigned bits: the same 8-bit result per pixel as running it on the frame, for a fraction of the work.
    None when the output depends on the frame itself (no window anywhere: the frame's own range is used)."""
    if window is None and (_first(ds.get("WindowCenter")) is None or not (_first(ds.get("WindowWidth")) or 0) > 0):
        return None
    key = (dtype.str, window, *(str(ds.get(k, "")) for k in (
        "RescaleSlope", "RescaleIntercept", "RescaleType", "WindowCenter", "WindowWidth", "VOILUTFunction",
        "PhotometricInterpretation")))
    with _LUTS_LOCK:
        lut = _LUTS.get(key)
    if lut is None:
        unsigned = np.dtype(f"<u{dtype.itemsize}")
        values = np.arange(1 << (8 * dtype.itemsize), dtype=unsigned).view(dtype)
        lut = _grayscale(ds, values, 0, window)
        with _LUTS_LOCK:
            _LUTS[key] = lut
            while len(_LUTS) > LUT_CACHE_SIZE:
                _LUTS.popitem(last=False)
    return lut


def render_pixels(ds: Dataset, arr: np.ndarray, params: RenderParams) -> bytes:
    """Window a grayscale frame and encode it (the last steps of :func:`render`)."""
    try:
        lut = _lookup_table(ds, arr.dtype, params.window)
        if lut is not None:
            gray = lut.take(arr.view(f"<u{arr.dtype.itemsize}"), mode="clip")  # every index is in range
        else:
            gray = _grayscale(ds, arr, 0, params.window)
        image = Image.fromarray(gray)
    except RenderError:
        raise
    except Exception as exc:
        raise RenderFailure(f"the image cannot be rendered: {exc}") from exc
    return _encode(_apply_viewport(image, params.viewport), params)


def read_attributes(src: str | BinaryIO) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(src, stop_before_pixels=True)


def render(src: str | BinaryIO, ds: Dataset, frame: int, params: RenderParams) -> bytes:
    """Render frame ``frame`` (0-based) of the instance in ``src``, whose attributes are ``ds``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if str(ds.file_meta.get("TransferSyntaxUID", "")) == "1.2.840.10008.1.2.1.99":
                src = pydicom.dcmread(src)  # deflated: inflate first
            arr = pixel_array(src, index=frame, as_rgb=True)
    except Exception as exc:
        raise RenderFailure(f"the stored pixel data cannot be decoded: {exc}") from exc
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    try:
        if samples == 1 and photometric != "PALETTE COLOR":
            image = Image.fromarray(_grayscale(ds, arr, frame, params.window))
        else:
            image = Image.fromarray(_colour(ds, arr))
    except RenderError:
        raise
    except Exception as exc:
        raise RenderFailure(f"the image cannot be rendered: {exc}") from exc
    return _encode(_apply_viewport(image, params.viewport), params)


def _encode(image: Image.Image, params: RenderParams) -> bytes:
    out = io.BytesIO()
    if params.media_type == "image/jpeg":
        image.save(out, "JPEG", quality=params.quality or DEFAULT_QUALITY)
    elif params.media_type == "image/png":
        image.save(out, "PNG", compress_level=3)
    else:
        image.save(out, _PIL_FORMAT[params.media_type])
    return out.getvalue()
