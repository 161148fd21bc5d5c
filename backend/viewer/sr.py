"""Measurements -> DICOM Comprehensive 3D SR following TID 1500 (Measurement Report), built with highdicom.

Each measurement becomes one TID 1410 "Planar ROI Measurements" group: its region as SCOORD in the pixel
coordinates of the image it was drawn on (converted from the patient coordinates the viewer stores), and its
numbers as TID 300 measurements with UCUM units.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from .models import Measurement

_SCT = "SCT"


def _code(value: str, meaning: str, scheme: str = _SCT) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(value=value, scheme_designator=scheme, meaning=meaning)


# Concept names of the numbers (CID 7470 / 7464 and DCM codes, as OHIF and dcmqi write them).
LENGTH = _code("410668003", "Length")
AREA = _code("42798000", "Area")
MEAN = _code("373098007", "Mean")
STDDEV = _code("386136009", "Standard Deviation")
MIN = _code("255605001", "Minimum")
MAX = _code("56851009", "Maximum")
ANGLE = _code("1483009", "Angle")
VALUE = _code("112031", "Attenuation Coefficient", "DCM")
MM = _code("mm", "millimeter", "UCUM")
MM2 = _code("mm2", "square millimeter", "UCUM")
DEG = _code("deg", "degree", "UCUM")
HU = _code("[hnsf'U]", "Hounsfield unit", "UCUM")
NO_UNITS = _code("1", "no units", "UCUM")

FINDING = {
    "length": _code("410668003", "Length"),
    "angle": _code("1483009", "Angle"),
    "ellipse": _code("52988006", "Lesion"),
    "rectangle": _code("52988006", "Lesion"),
    "probe": _code("52988006", "Lesion"),
    "arrow": _code("111030", "Image Region", "DCM"),
}


class SrError(ValueError):
    """The measurements cannot be written as an SR; the message says which one and why."""


@dataclass(frozen=True)
class ImageGeometry:
    position: np.ndarray  # ImagePositionPatient of the frame
    row_cosines: np.ndarray  # direction of increasing column index
    column_cosines: np.ndarray  # direction of increasing row index
    spacing: tuple[float, float]  # (between rows, between columns)

    @classmethod
    def from_dataset(cls, ds: Dataset) -> ImageGeometry:
        try:
            iop = [float(v) for v in ds.ImageOrientationPatient]
            ipp = [float(v) for v in ds.ImagePositionPatient]
            ps = [float(v) for v in ds.PixelSpacing]
        except AttributeError as exc:
            raise SrError(f"image {ds.SOPInstanceUID} lacks {exc.name or 'plane geometry'}") from exc
        return cls(np.array(ipp), np.array(iop[:3]), np.array(iop[3:]), (ps[0], ps[1]))

    def to_pixels(self, points: Sequence[Sequence[float]]) -> np.ndarray:
        """Patient mm -> SCOORD (column, row), where (0, 0) is the outer corner of the first pixel."""
        d = np.asarray(points, dtype=float) - self.position
        col = d @ self.row_cosines / self.spacing[1]
        row = d @ self.column_cosines / self.spacing[0]
        return np.stack([col + 0.5, row + 0.5], axis=1)


def _ellipse_axes(px: np.ndarray) -> np.ndarray:
    """Cornerstone stores an ellipse as 4 points (top, bottom, left, right): SCOORD ELLIPSE wants both axes."""
    if len(px) >= 4:
        return px[:4]
    (x0, y0), (x1, y1) = px[0], px[1]
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return np.array([[cx, y0], [cx, y1], [x0, cy], [x1, cy]])


def _rectangle(px: np.ndarray) -> np.ndarray:
    """Cornerstone's rectangle is 4 corners (TL, TR, BL, BR): a closed polygon goes around them."""
    if len(px) >= 4:
        tl, tr, bl, br = px[:4]
        return np.array([tl, tr, br, bl, tl])
    (x0, y0), (x1, y1) = px[0], px[1]
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]])


def _region(m: Measurement, px: np.ndarray, source: hd.sr.SourceImageForRegion) -> hd.sr.ImageRegion:
    G = hd.sr.GraphicTypeValues
    if m.kind == "ellipse":
        return hd.sr.ImageRegion(G.ELLIPSE, _ellipse_axes(px), source_image=source)
    if m.kind == "rectangle":
        return hd.sr.ImageRegion(G.POLYLINE, _rectangle(px), source_image=source)
    if m.kind == "probe":
        return hd.sr.ImageRegion(G.POINT, px[:1], source_image=source)
    return hd.sr.ImageRegion(G.POLYLINE, px, source_image=source)


def _measurements(m: Measurement, modality: str) -> list[hd.sr.Measurement]:
    s = m.stats or {}
    value_unit = HU if modality == "CT" else NO_UNITS
    wanted = [
        ("length", LENGTH, MM),
        ("angle", ANGLE, DEG),
        ("area", AREA, MM2),
        ("mean", MEAN, value_unit),
        ("stdDev", STDDEV, value_unit),
        ("min", MIN, value_unit),
        ("max", MAX, value_unit),
        ("value", VALUE if modality == "CT" else MEAN, value_unit),
    ]
    return [hd.sr.Measurement(name=name, value=float(s[key]), unit=unit) for key, name, unit in wanted if key in s]


def build_measurement_report(
    measurements: Iterable[Measurement],
    images: dict[str, Dataset],
    *,
    observer: str,
    series_number: int = 9901,
    instance_number: int = 1,
) -> hd.sr.Comprehensive3DSR:
    """A TID 1500 SR for ``measurements``; ``images`` maps each referenced SOP Instance UID to its header."""
    measurements = list(measurements)
    if not measurements:
        raise SrError("there are no measurements to export")
    groups = []
    for m in measurements:
        image = images.get(m.sop_instance_uid)
        if image is None:
            raise SrError(f"measurement {m.uid} refers to image {m.sop_instance_uid}, which is not in the archive")
        geometry = ImageGeometry.from_dataset(image)
        px = geometry.to_pixels(m.points)
        frames = [m.frame_number] if int(getattr(image, "NumberOfFrames", 1) or 1) > 1 else None
        source = hd.sr.SourceImageForRegion(
            referenced_sop_class_uid=image.SOPClassUID,
            referenced_sop_instance_uid=image.SOPInstanceUID,
            referenced_frame_numbers=frames,
        )
        groups.append(
            hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=f"{m.kind} {m.uid}"[:64]),
                referenced_region=_region(m, px, source),
                finding_type=FINDING[m.kind],
                measurements=_measurements(m, getattr(image, "Modality", "")),
                qualitative_evaluations=None,
            )
        )
    observer_context = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name=observer or "Lightbox^User"),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=observer_context),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion
        if any(getattr(d, "Modality", "") == "CT" for d in images.values())
        else _code("18748-4", "Diagnostic imaging study", "LN"),
        imaging_measurements=groups,
        title=codes.DCM.ImagingMeasurementReport,
    )
    evidence = list(images.values())
    return hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=report,
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=instance_number,
        manufacturer="Lightbox",
        series_description="Lightbox measurements",
        is_complete=False,
        is_final=False,
        is_verified=False,
    )
