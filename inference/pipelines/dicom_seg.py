"""DICOM Segmentation (SEG) of the chest CT labels, referencing the source CT instances (highdicom).

BINARY by default: every DICOM SEG reader (dcmjs, Cornerstone3D, OHIF, 3D Slicer) supports it. LABELMAP
(supplement 243) with RLE Lossless is about 10 times smaller but younger; ask for it with
``segmentation_type="LABELMAP"``. Empty frames are omitted, so the frame count is not the slice count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

__all__ = ["build_segmentation", "SEGMENT_CODES", "DEVICE_SERIAL"]

#: SNOMED CT category and type per label name (CID 7150 / CID 7151 / CID 7159 style).
SEGMENT_CODES: dict[str, tuple] = {
    "lung": (codes.SCT.AnatomicalStructure, codes.SCT.Lung, hd.color.CIELabColor(70.0, -30.0, -20.0)),
    "nodule": (
        codes.SCT.MorphologicallyAbnormalStructure,
        codes.SCT.Nodule,
        hd.color.CIELabColor(55.0, 70.0, 50.0),
    ),
    "liver": (codes.SCT.AnatomicalStructure, codes.SCT.Liver, hd.color.CIELabColor(45.0, 30.0, 40.0)),
}
DEVICE_SERIAL = "LIGHTBOX-AI-0001"


def algorithm_identification(name: str, version: str) -> hd.AlgorithmIdentificationSequence:
    return hd.AlgorithmIdentificationSequence(
        name=name, version=version, family=codes.DCM.ArtificialIntelligence
    )


def build_segmentation(
    source_images: Sequence[Dataset],
    labels: np.ndarray,
    label_names: Mapping[str, int],
    *,
    model_name: str,
    model_version: str,
    series_number: int = 901,
    segmentation_type: str = "BINARY",
    manufacturer: str = "Lightbox",
    device_serial_number: str = DEVICE_SERIAL,
    series_description: str | None = None,
) -> hd.seg.Segmentation:
    """Build a SEG from a label volume.

    Args:
        source_images: the CT datasets (headers suffice), in the same order as ``labels`` slices.
        labels: uint8 (slices, rows, columns) with the values of ``label_names``; 0 is background.
        label_names: e.g. ``{"background": 0, "lung": 1, "nodule": 2, "liver": 3}``; names must be in
            :data:`SEGMENT_CODES`.
        segmentation_type: ``"BINARY"`` (uncompressed) or ``"LABELMAP"`` (RLE Lossless).
    """
    if labels.ndim != 3 or labels.shape[0] != len(source_images):
        raise ValueError(
            f"labels must be (slices, rows, columns) with one slice per source image ({len(source_images)}), "
            f"got shape {labels.shape!r}."
        )
    if segmentation_type not in ("BINARY", "LABELMAP"):
        raise ValueError(f"segmentation_type must be 'BINARY' or 'LABELMAP', got {segmentation_type!r}.")
    algo = algorithm_identification(model_name, model_version)
    descriptions, remap = [], np.zeros(256, dtype=np.uint8)
    number = 0
    for name, value in sorted(label_names.items(), key=lambda kv: kv[1]):
        if value == 0:
            continue
        if name not in SEGMENT_CODES:
            raise ValueError(
                f"label {name!r} has no code in SEGMENT_CODES; add its SNOMED CT category and type."
            )
        if not (labels == value).any():
            continue  # a segment with no pixels is not allowed
        number += 1
        remap[value] = number
        category, prop, colour = SEGMENT_CODES[name]
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=name.capitalize(),
                segmented_property_category=category,
                segmented_property_type=prop,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=algo,
                tracking_uid=generate_uid(),
                tracking_id=f"{model_name} {name}",
                display_color=colour,
            )
        )
    if not descriptions:
        raise ValueError("labels hold no segment: nothing to write.")
    pixel_array = remap[labels]
    return hd.seg.Segmentation(
        source_images=list(source_images),
        pixel_array=pixel_array,
        segmentation_type=segmentation_type,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=manufacturer,
        manufacturer_model_name=model_name,
        software_versions=model_version,
        device_serial_number=device_serial_number,
        content_description=series_description or f"{model_name} segmentation",
        content_label="AI_SEG",
        series_description=series_description or f"AI {model_name} SEG",
        transfer_syntax_uid=RLELossless if segmentation_type == "LABELMAP" else ExplicitVRLittleEndian,
        omit_empty_frames=True,
    )
