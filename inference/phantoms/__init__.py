"""Synthetic phantoms with known ground truth, and writers that turn them into DICOM files.

Used for demo data, training the demo models and tests. They are test objects, not anatomy.
"""

from inference.phantoms.brain_mr import DEMO_MR_SHAPE, DEMO_MR_SPACING, make_brain_mr
from inference.phantoms.chest_ct import DEMO_CT_SHAPE, DEMO_CT_SPACING, make_chest_ct
from inference.phantoms.chest_radiograph import DEMO_CR_SIZE, DEMO_CR_SPACING, make_chest_radiograph
from inference.phantoms.dicom_writer import write_cr, write_ct_series, write_ground_truth, write_mr_series
from inference.phantoms.types import (
    CT_LABELS,
    MR_LABELS,
    Nodule,
    Phantom,
    RadiographNodule,
    RadiographPhantom,
)

__all__ = [
    "make_chest_ct",
    "make_chest_radiograph",
    "make_brain_mr",
    "write_ct_series",
    "write_mr_series",
    "write_cr",
    "write_ground_truth",
    "Phantom",
    "Nodule",
    "RadiographPhantom",
    "RadiographNodule",
    "CT_LABELS",
    "MR_LABELS",
    "DEMO_CT_SHAPE",
    "DEMO_CT_SPACING",
    "DEMO_CR_SIZE",
    "DEMO_CR_SPACING",
    "DEMO_MR_SHAPE",
    "DEMO_MR_SPACING",
]
