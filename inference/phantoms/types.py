"""Phantom containers: a voxel grid with its patient geometry and its ground truth."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Nodule", "Phantom", "RadiographNodule", "RadiographPhantom", "CT_LABELS", "MR_LABELS"]

#: Label values of :attr:`Phantom.labels` for chest CT phantoms. Vessels count as lung, the heart,
#: mediastinum, bone and fat as background, like a lung mask from a clinical tool would.
CT_LABELS: dict[str, int] = {"background": 0, "lung": 1, "nodule": 2, "liver": 3}
#: Label values for the brain MR phantom.
MR_LABELS: dict[str, int] = {"background": 0, "brain": 1, "ventricles": 2}


@dataclass(frozen=True)
class Nodule:
    """A ground-truth nodule.

    ``center_mm`` is in patient coordinates (LPS, x y z), ``center_voxel`` in array order (z, y, x),
    ``diameter_mm`` the nominal diameter (the lobulated surface averages to it) and ``volume_mm3`` the
    labelled volume.
    """

    center_mm: tuple[float, float, float]
    center_voxel: tuple[float, float, float]
    diameter_mm: float
    volume_mm3: float
    hu: float

    def as_dict(self) -> dict:
        return {
            "center_mm": [round(float(v), 3) for v in self.center_mm],
            "center_voxel": [round(float(v), 3) for v in self.center_voxel],
            "diameter_mm": round(float(self.diameter_mm), 3),
            "volume_mm3": round(float(self.volume_mm3), 2),
            "hu": round(float(self.hu), 1),
        }


@dataclass
class Phantom:
    """A volume with axial slices, patient axes aligned with the array axes.

    The array is (z, y, x). Voxel (k, i, j) lies at patient position
    ``origin + (j * spacing[2], i * spacing[1], k * spacing[0])`` (LPS, mm): the rows run to the patient's
    posterior, the columns to the patient's left and the slices to the head, i.e. Image Orientation
    (Patient) ``[1, 0, 0, 0, 1, 0]``.
    """

    volume: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    labels: np.ndarray
    nodules: list[Nodule] = field(default_factory=list)
    modality: str = "CT"
    label_names: dict[str, int] = field(default_factory=lambda: dict(CT_LABELS))
    seed: int | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.volume.shape)  # type: ignore[return-value]

    def voxel_to_mm(self, zyx: tuple[float, float, float] | np.ndarray) -> np.ndarray:
        """Array index (z, y, x), fractional allowed, to patient LPS (x, y, z) in mm."""
        k, i, j = (float(v) for v in zyx)
        sz, sy, sx = self.spacing
        ox, oy, oz = self.origin
        return np.array([ox + j * sx, oy + i * sy, oz + k * sz])

    def mm_to_voxel(self, xyz: tuple[float, float, float] | np.ndarray) -> np.ndarray:
        """Patient LPS (x, y, z) in mm to fractional array index (z, y, x)."""
        x, y, z = (float(v) for v in xyz)
        sz, sy, sx = self.spacing
        ox, oy, oz = self.origin
        return np.array([(z - oz) / sz, (y - oy) / sy, (x - ox) / sx])

    def ground_truth(self) -> dict:
        """JSON-ready ground truth: geometry, label values and nodules in patient mm."""
        return {
            "modality": self.modality,
            "seed": self.seed,
            "shape_zyx": list(self.shape),
            "spacing_zyx_mm": [float(v) for v in self.spacing],
            "origin_xyz_mm": [float(v) for v in self.origin],
            "coordinate_system": "DICOM patient LPS, mm; voxel index order (z, y, x)",
            "labels": dict(self.label_names),
            "nodules": [n.as_dict() for n in self.nodules],
        }


@dataclass(frozen=True)
class RadiographNodule:
    """A nodule on a radiograph: ``center_px`` is (row, column), ``center_mm`` the same in mm from the
    top-left pixel centre, along rows then columns."""

    center_px: tuple[float, float]
    center_mm: tuple[float, float]
    diameter_mm: float

    def as_dict(self) -> dict:
        return {
            "center_px": [round(float(v), 2) for v in self.center_px],
            "center_mm": [round(float(v), 2) for v in self.center_mm],
            "diameter_mm": round(float(self.diameter_mm), 2),
        }


@dataclass
class RadiographPhantom:
    """A 2D projection image (MONOCHROME2 sense: larger = more attenuating = brighter) and its ground truth.

    ``image`` is uint16 with 12 significant bits; ``spacing`` is (row, column) in mm; ``nodule_mask`` marks
    the nodule's projected disc (all False without nodule).
    """

    image: np.ndarray
    spacing: tuple[float, float]
    nodules: list[RadiographNodule]
    nodule_mask: np.ndarray
    seed: int | None = None

    @property
    def has_nodule(self) -> bool:
        return bool(self.nodules)

    def ground_truth(self) -> dict:
        return {
            "modality": "CR",
            "seed": self.seed,
            "shape_rc": [int(v) for v in self.image.shape],
            "spacing_rc_mm": [float(v) for v in self.spacing],
            "has_nodule": self.has_nodule,
            "nodules": [n.as_dict() for n in self.nodules],
        }
