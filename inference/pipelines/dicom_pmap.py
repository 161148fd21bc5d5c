"""The Grad-CAM heatmap as a DICOM Parametric Map over the source radiograph (highdicom).

A Parametric Map carries real-valued pixels with a Real World Value Mapping that says what they mean, keeps
the source image's geometry and references it, so any DICOM viewer can overlay or fuse it; a secondary
capture screenshot would lose both the values and the link. Values are saliency in [0, 1] (no units), not
a probability: the mapping's explanation says so.
"""

from __future__ import annotations

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

__all__ = ["build_heatmap_map"]


class _ParametricMap(hd.pm.ParametricMap):
    """Works around highdicom 0.28.2 for sources without a Frame of Reference (CR/DX radiographs).

    highdicom then indexes frames by Frame Label (0020,9453) but writes neither the label nor the
    Dimension Index Values, and its own consistency check fails. We fill both (one frame, label
    "GRADCAM", index 1) before that check runs; sources with a Frame of Reference are untouched.
    """

    def _build_luts(self) -> None:
        pointers = [int(item.DimensionIndexPointer) for item in getattr(self, "DimensionIndexSequence", [])]
        if pointers == [0x00209453]:
            for item in self.PerFrameFunctionalGroupsSequence:
                content = item.FrameContentSequence[0]
                if not content.get("DimensionIndexValues"):
                    content.FrameLabel = "GRADCAM"
                    content.DimensionIndexValues = [1]
        super()._build_luts()


def build_heatmap_map(
    source_image: Dataset,
    heatmap: np.ndarray,
    *,
    model_name: str,
    model_version: str,
    series_number: int = 903,
    manufacturer: str = "Lightbox",
    device_serial_number: str = "LIGHTBOX-AI-0001",
) -> hd.pm.ParametricMap:
    """Build a Parametric Map of a (rows, columns) float heatmap in [0, 1] at the source image's size.

    Stored as 16-bit unsigned integers with slope 1/65535 (half the size of float32, exact to 1e-5).
    """
    rows, cols = int(source_image.Rows), int(source_image.Columns)
    if heatmap.shape != (rows, cols):
        raise ValueError(f"heatmap must be {rows}x{cols} like the source image, got shape {heatmap.shape!r}.")
    if not np.isfinite(heatmap).all() or heatmap.min() < 0 or heatmap.max() > 1:
        raise ValueError("heatmap values must be finite and within [0, 1].")
    stored = np.rint(heatmap * 65535).astype(np.uint16)[None]
    mapping = hd.pm.RealWorldValueMapping(
        lut_label="GRADCAM",
        lut_explanation="Grad-CAM saliency of the nodule class (0-1), not a probability",
        unit=codes.UCUM.NoUnits,
        value_range=(0, 65535),
        intercept=0,
        slope=1 / 65535,
    )
    return _ParametricMap(
        source_images=[source_image],
        pixel_array=stored,
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=manufacturer,
        manufacturer_model_name=model_name,
        software_versions=model_version,
        device_serial_number=device_serial_number,
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        voi_lut_transformations=[hd.VOILUTTransformation(window_center=32768, window_width=65536)],
        content_label="GRADCAM",
        content_description=f"{model_name} Grad-CAM heatmap",
        series_description=f"AI {model_name} heatmap",
    )
