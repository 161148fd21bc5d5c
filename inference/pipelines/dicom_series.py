"""Assemble a volume from the files of one DICOM series, checking what a model needs to trust it.

The archive gives inference file paths; this module is the only place that reads them. Headers are read
first (without pixel data) to sort slices along the slice normal and check geometry, pixel data later slab by
slab, so the first partial result does not wait for the whole series. Every refusal is an
:class:`~inference.errors.InferenceInputError` whose ``reason`` a radiologist can read.

Arrays are kept in a *canonical* orientation: slices sorted along the slice normal from feet to head
(ascending patient z), rows running to the patient's posterior, columns to the patient's left (in-plane
flips of the stored image are undone). Results
go back to the stored orientation with :meth:`SeriesGeometry.to_stored`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from inference.errors import InferenceInputError

__all__ = [
    "SeriesGeometry",
    "scan_series",
    "scan_series_start",
    "same_start",
    "read_slices",
    "load_volume",
    "read_radiograph",
    "Radiograph",
]

_NON_IMAGE_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.66.4": "a segmentation (SEG)",
    "1.2.840.10008.5.1.4.1.1.88.34": "a structured report (SR)",
    "1.2.840.10008.5.1.4.1.1.30": "a parametric map",
    "1.2.840.10008.5.1.4.1.1.104.1": "an encapsulated PDF",
}


@dataclass
class SeriesGeometry:
    """Sorted headers and the patient geometry of a single-frame series.

    ``spacing`` is (slice, row, column) mm in canonical order; ``origin`` the patient position (x, y, z mm)
    of canonical voxel (0, 0, 0); ``directions`` the unit patient vectors of the canonical (z, y, x) axes.
    """

    paths: list[Path]
    headers: list[Dataset]
    modality: str
    body_part: str
    rows: int
    columns: int
    spacing: tuple[float, float, float]
    origin: np.ndarray
    directions: np.ndarray  # (3, 3): rows are the patient vectors of canonical axes z, y, x
    flip_rows: bool
    flip_columns: bool
    study_instance_uid: str
    series_instance_uid: str
    frame_of_reference_uid: str
    sop_instance_uids: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.paths), self.rows, self.columns)

    @property
    def affine(self) -> np.ndarray:
        """4 x 4 matrix taking canonical (z, y, x, 1) indices to patient (x, y, z, 1) mm."""
        a = np.eye(4)
        for axis in range(3):
            a[:3, axis] = self.directions[axis] * self.spacing[axis]
        a[:3, 3] = self.origin
        return a

    def index_to_patient(self, zyx: Sequence[float]) -> np.ndarray:
        """Canonical fractional index (z, y, x) to patient (x, y, z) mm."""
        return self.affine[:3, :3] @ np.asarray(zyx, dtype=np.float64) + self.origin

    def patient_to_index(self, xyz: Sequence[float]) -> np.ndarray:
        return np.linalg.solve(self.affine[:3, :3], np.asarray(xyz, dtype=np.float64) - self.origin)

    def to_stored(self, array: np.ndarray) -> np.ndarray:
        """Undo the in-plane flips so (z, row, column) matches the stored pixel data (z stays ascending)."""
        if self.flip_rows:
            array = array[:, ::-1]
        if self.flip_columns:
            array = array[:, :, ::-1]
        return np.ascontiguousarray(array)

    def stored_index(self, zyx: Sequence[float]) -> tuple[float, float, float]:
        """Canonical index to the stored (slice, row, column) index."""
        z, y, x = (float(v) for v in zyx)
        if self.flip_rows:
            y = self.rows - 1 - y
        if self.flip_columns:
            x = self.columns - 1 - x
        return z, y, x


def _read_header(path: Path) -> Dataset:
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError as exc:
        raise InferenceInputError(f"{path.name} is not a DICOM file ({exc}).") from exc
    except (OSError, ValueError, EOFError) as exc:
        raise InferenceInputError(f"{path.name} cannot be read: {exc}.") from exc


def _require(ds: Dataset, keyword: str, path: Path, why: str):
    value = getattr(ds, keyword, None)
    if value is None or value == "":
        raise InferenceInputError(f"{path.name} has no {keyword}: {why}.")
    return value


def scan_series(
    paths: Sequence[str | Path],
    *,
    modalities: Sequence[str] = ("CT",),
    min_slices: int = 8,
    require_axial: bool = True,
    max_spacing_deviation: float = 0.1,
) -> SeriesGeometry:
    """Read the headers, check the series is one consistent volume, sort it along the normal.

    Refuses (``InferenceInputError``): no files, non-DICOM files, a modality not in ``modalities``,
    results (SEG, SR) instead of images, several series, multi-frame objects, missing or inconsistent
    geometry, duplicate slice positions, gaps (spacing deviating by more than ``max_spacing_deviation``
    of the median), non-axial slices when ``require_axial``.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise InferenceInputError("the series has no files.")
    headers = [_read_header(p) for p in paths]
    first = headers[0]
    for ds, path in zip(headers, paths, strict=True):
        sop_class = str(getattr(ds, "SOPClassUID", ""))
        if sop_class in _NON_IMAGE_SOP_CLASSES:
            raise InferenceInputError(
                f"{path.name} is {_NON_IMAGE_SOP_CLASSES[sop_class]}, not an image to analyse."
            )
        modality = str(getattr(ds, "Modality", "") or "")
        if modality not in modalities:
            raise InferenceInputError(
                f"this model reads {'/'.join(modalities)} images; the series is {modality or 'of unknown modality'}."
            )
    series_uids = {str(getattr(ds, "SeriesInstanceUID", "")) for ds in headers}
    if len(series_uids) > 1:
        raise InferenceInputError(
            f"the files belong to {len(series_uids)} different series; send one series."
        )
    if int(getattr(first, "NumberOfFrames", 1) or 1) > 1:
        raise InferenceInputError(
            "multi-frame (enhanced) images are not supported yet; send a classic single-frame series."
        )
    if len(headers) < min_slices:
        raise InferenceInputError(
            f"the series has {len(headers)} slices; at least {min_slices} are needed for a volume."
        )

    rows, cols = (
        int(_require(first, "Rows", paths[0], "unknown image size")),
        int(_require(first, "Columns", paths[0], "unknown image size")),
    )
    iop = np.asarray(
        _require(first, "ImageOrientationPatient", paths[0], "cannot orient the slices"), dtype=np.float64
    )
    if iop.shape != (6,) or not np.isfinite(iop).all():
        raise InferenceInputError(f"{paths[0].name} has a malformed ImageOrientationPatient {list(iop)!r}.")
    row_cos, col_cos = iop[:3] / np.linalg.norm(iop[:3]), iop[3:] / np.linalg.norm(iop[3:])
    normal = np.cross(row_cos, col_cos)
    spacing_rc = np.asarray(
        _require(first, "PixelSpacing", paths[0], "cannot measure in mm"), dtype=np.float64
    )
    if spacing_rc.shape != (2,) or (spacing_rc <= 0).any():
        raise InferenceInputError(f"{paths[0].name} has an invalid PixelSpacing {list(spacing_rc)!r}.")

    positions = []
    for ds, path in zip(headers, paths, strict=True):
        if (int(ds.Rows), int(ds.Columns)) != (rows, cols):
            raise InferenceInputError(
                f"{path.name} is {ds.Rows}x{ds.Columns}, other slices are {rows}x{cols}."
            )
        other = np.asarray(
            _require(ds, "ImageOrientationPatient", path, "cannot orient the slice"), dtype=np.float64
        )
        if np.abs(other - iop).max() > 1e-3:
            raise InferenceInputError(f"{path.name} is tilted differently from the other slices.")
        if np.abs(np.asarray(ds.PixelSpacing, dtype=np.float64) - spacing_rc).max() > 1e-3:
            raise InferenceInputError(f"{path.name} has a different PixelSpacing from the other slices.")
        positions.append(
            np.asarray(
                _require(ds, "ImagePositionPatient", path, "cannot place the slice in 3D"), dtype=np.float64
            )
        )
    positions_a = np.stack(positions)
    if normal[2] < 0:  # sort feet to head whatever the stored orientation (prone, feet first)
        normal = -normal
    along = positions_a @ normal
    order = np.argsort(along, kind="stable")
    along = along[order]
    steps = np.diff(along)
    if (steps < 1e-3).any():
        k = int(np.argmin(steps))
        raise InferenceInputError(
            f"two slices share position {along[k]:.2f} mm along the normal; the series has duplicates."
        )
    median = float(np.median(steps))
    if (np.abs(steps - median) > max_spacing_deviation * median).any():
        k = int(np.argmax(np.abs(steps - median)))
        raise InferenceInputError(
            f"slice spacing is irregular ({steps[k]:.2f} mm between {along[k]:.1f} and {along[k + 1]:.1f} mm, "
            f"usually {median:.2f} mm): slices are missing or the series mixes acquisitions."
        )
    if require_axial and abs(normal[2]) < 0.9:
        raise InferenceInputError(
            "this model needs axial slices; the series is sagittal, coronal or strongly oblique."
        )

    # Canonical orientation: columns towards +x (patient left), rows towards +y (posterior) for axial data.
    flip_columns = bool(require_axial and row_cos[0] < 0)
    flip_rows = bool(require_axial and col_cos[1] < 0)
    sorted_paths = [paths[i] for i in order]
    sorted_headers = [headers[i] for i in order]
    origin = positions_a[order[0]].copy()
    dir_x, dir_y = row_cos.copy(), col_cos.copy()
    if flip_columns:
        origin += row_cos * spacing_rc[1] * (cols - 1)
        dir_x = -row_cos
    if flip_rows:
        origin += col_cos * spacing_rc[0] * (rows - 1)
        dir_y = -col_cos
    # The slice axis follows the sorted positions, which may not be exactly the normal for gantry tilt.
    span = positions_a[order[-1]] - positions_a[order[0]]
    dir_z = span / np.linalg.norm(span)
    step_z = float(np.linalg.norm(span)) / (len(order) - 1)
    return SeriesGeometry(
        paths=sorted_paths,
        headers=sorted_headers,
        modality=str(first.Modality),
        body_part=str(getattr(first, "BodyPartExamined", "") or ""),
        rows=rows,
        columns=cols,
        spacing=(step_z, float(spacing_rc[0]), float(spacing_rc[1])),
        origin=origin,
        directions=np.stack([dir_z, dir_y, dir_x]),
        flip_rows=flip_rows,
        flip_columns=flip_columns,
        study_instance_uid=str(getattr(first, "StudyInstanceUID", "")),
        series_instance_uid=str(getattr(first, "SeriesInstanceUID", "")),
        frame_of_reference_uid=str(getattr(first, "FrameOfReferenceUID", "")),
        sop_instance_uids=[str(ds.SOPInstanceUID) for ds in sorted_headers],
    )


def _feet_first(paths: list[Path]) -> list[Path] | None:
    """``paths`` (sorted along the slice normal, either way) from the feet end, judging by the two end
    slices' positions along the normal turned towards the head; None when the ends do not tell."""
    try:
        ends = [pydicom.dcmread(p, stop_before_pixels=True) for p in (paths[0], paths[-1])]
        iop = np.asarray(ends[0].ImageOrientationPatient, dtype=np.float64)
        normal = np.cross(iop[:3], iop[3:])
        if normal[2] < 0:
            normal = -normal
        along = [float(np.asarray(ds.ImagePositionPatient, dtype=np.float64) @ normal) for ds in ends]
    except Exception:  # any doubt: the caller reads every header
        return None
    if abs(along[1] - along[0]) < 1e-3:
        return None
    return paths if along[0] < along[1] else paths[::-1]


def scan_series_start(
    paths: Sequence[str | Path], needed_mm: float, *, modalities: Sequence[str] = ("CT",), margin: int = 4
) -> SeriesGeometry | None:
    """Geometry from the headers of the first slices only, for a series whose ``paths`` come sorted along
    the slice normal (either direction; the archive indexes that position): the first ``needed_mm`` from
    the feet end plus ``margin`` slices are read, the rest are counted. The result has the whole series'
    shape; ``paths`` beyond the ones read are in no particular order and ``headers`` and
    ``sop_instance_uids`` cover only the slices read. Callers must check it with :func:`same_start`
    against :func:`scan_series` before using anything beyond those slices. None when the hint does not hold
    up (or the series is too short to gain anything): scan the whole series instead.
    """
    paths = [Path(p) for p in paths]
    if len(paths) < 24:
        return None
    ordered = _feet_first(paths)
    if ordered is None:
        return None
    try:
        probe = scan_series(ordered[:8], modalities=modalities)
        k = int(np.ceil(needed_mm / probe.spacing[0])) + margin
        if k * 2 > len(paths):
            return None
        start = probe if k <= 8 else scan_series(ordered[:k], modalities=modalities)
    except InferenceInputError:
        return None  # the full scan gives the real reason, if there is one
    read = set(start.paths)
    rest = [p for p in ordered if p not in read]
    return SeriesGeometry(
        paths=start.paths + rest,
        headers=start.headers,
        modality=start.modality,
        body_part=start.body_part,
        rows=start.rows,
        columns=start.columns,
        spacing=start.spacing,
        origin=start.origin,
        directions=start.directions,
        flip_rows=start.flip_rows,
        flip_columns=start.flip_columns,
        study_instance_uid=start.study_instance_uid,
        series_instance_uid=start.series_instance_uid,
        frame_of_reference_uid=start.frame_of_reference_uid,
        sop_instance_uids=start.sop_instance_uids,
    )


def same_start(early: SeriesGeometry, full: SeriesGeometry, slices: int, tol_mm: float = 0.01) -> bool:
    """True when ``full`` has ``early``'s shape, orientation and voxel grid and the same first ``slices``
    files, i.e. what was computed on ``early`` holds for ``full``."""
    n = min(slices, len(early.sop_instance_uids))
    return (
        early.shape == full.shape
        and (early.flip_rows, early.flip_columns) == (full.flip_rows, full.flip_columns)
        and early.paths[:n] == full.paths[:n]
        and np.allclose(early.origin, full.origin, atol=tol_mm)
        and np.allclose(early.directions, full.directions, atol=1e-3)
        and all(abs(a - b) * len(full.paths) <= max(tol_mm, 0.1) for a, b in zip(early.spacing, full.spacing, strict=True))
    )


def _slice_values(path: Path, index: int, rows: int, cols: int) -> np.ndarray:
    try:
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array
    except Exception as exc:  # pydicom raises many types for bad pixel data
        raise InferenceInputError(
            f"pixel data of slice {index + 1} ({path.name}) cannot be decoded: {exc}"
        ) from exc
    if pixels.shape != (rows, cols):
        raise InferenceInputError(
            f"pixel data of {path.name} is {pixels.shape}, the header says {rows}x{cols}."
        )
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    values = pixels.astype(np.float32)
    if slope != 1:
        values *= slope
    if intercept:
        values += intercept
    return values


def read_slices(geometry: SeriesGeometry, start: int, stop: int) -> np.ndarray:
    """Rescaled values (HU for CT) of sorted slices ``start:stop`` as float32 (n, rows, columns), canonical."""
    if not 0 <= start < stop <= len(geometry.paths):
        raise ValueError(f"slice range must lie in [0, {len(geometry.paths)}], got {start}:{stop}.")
    out = np.empty((stop - start, geometry.rows, geometry.columns), dtype=np.float32)
    for n, k in enumerate(range(start, stop)):
        values = _slice_values(geometry.paths[k], k, geometry.rows, geometry.columns)
        if geometry.flip_rows:
            values = values[::-1]
        if geometry.flip_columns:
            values = values[:, ::-1]
        out[n] = values
    return out


def load_volume(
    paths: Sequence[str | Path], *, modalities: Sequence[str] = ("CT",), **scan_kwargs
) -> tuple[SeriesGeometry, np.ndarray]:
    """Headers and the whole canonical volume at once (tests, tools); pipelines stream with :func:`read_slices`."""
    geometry = scan_series(paths, modalities=modalities, **scan_kwargs)
    return geometry, read_slices(geometry, 0, len(geometry.paths))


@dataclass
class Radiograph:
    """One projection image, MONOCHROME2 sense (larger = denser), with its header (no pixel data)."""

    path: Path
    header: Dataset
    image: np.ndarray
    spacing: tuple[float, float]


def read_radiograph(path: str | Path, *, modalities: Sequence[str] = ("CR", "DX")) -> Radiograph:
    """Read a CR/DX image; MONOCHROME1 is inverted so the model always sees bone bright."""
    path = Path(path)
    header = _read_header(path)
    modality = str(getattr(header, "Modality", "") or "")
    if modality not in modalities:
        raise InferenceInputError(
            f"this model reads {'/'.join(modalities)} radiographs; the image is {modality or 'of unknown modality'}."
        )
    if int(getattr(header, "NumberOfFrames", 1) or 1) > 1:
        raise InferenceInputError(f"{path.name} has several frames; send a single radiograph.")
    rows, cols = (
        int(_require(header, "Rows", path, "unknown image size")),
        int(_require(header, "Columns", path, "unknown image size")),
    )
    values = _slice_values(path, 0, rows, cols)
    photometric = str(getattr(header, "PhotometricInterpretation", "MONOCHROME2"))
    if photometric == "MONOCHROME1":
        values = values.max() + values.min() - values
    elif photometric != "MONOCHROME2":
        raise InferenceInputError(f"{path.name} is {photometric}; a grey-scale radiograph is needed.")
    spacing = (
        getattr(header, "PixelSpacing", None) or getattr(header, "ImagerPixelSpacing", None) or (1.0, 1.0)
    )
    return Radiograph(path=path, header=header, image=values, spacing=(float(spacing[0]), float(spacing[1])))
