"""Read stored AI results back from the archive for a reopened viewer, in the same shapes as the live events.

The DICOM objects (SEG, parametric map) are the source of truth: a viewer that reopens a study gets the
segmentation decoded from the stored SEG, not from a cache, so what it shows is what any DICOMweb viewer reads.
"""
from __future__ import annotations

import base64
import io
import warnings
from typing import Any

import numpy as np
import pydicom
from PIL import Image

from archive.models import Instance
from archive.storage import get_storage
from inference.pipelines.encoding import RLE_ENCODING, rle_encode_b64

SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
PMAP_CLASS = "1.2.840.10008.5.1.4.1.1.30"


def _read(instance: Instance):
    with get_storage().open(instance.storage_key) as fp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(fp)


def _source_uids(series_uid: str) -> list[str]:
    """Source images of a series in the order the pipelines use: ascending position along the normal."""
    rows = Instance.objects.filter(series__series_instance_uid=series_uid).values_list(
        "sop_instance_uid", "slice_position", "instance_number"
    )
    return [uid for uid, _, _ in sorted(rows, key=lambda r: (r[1] if r[1] is not None else 0, r[2] or 0))]


def segmentation_payload(instance: Instance) -> dict[str, Any] | None:
    import highdicom as hd

    seg = hd.seg.Segmentation.from_dataset(_read(instance))
    referenced = {ref.SeriesInstanceUID for ref in seg.ReferencedSeriesSequence}
    if len(referenced) != 1:
        return None
    series_uid = referenced.pop()
    sources = _source_uids(series_uid)
    labels = {str(s.SegmentLabel).lower(): int(s.SegmentNumber) for s in seg.SegmentSequence}
    known = {uid for _study, _series, uid in seg.get_source_image_uids()}
    slices = [u for u in sources if u in known]
    if not slices:
        return None
    first, last = sources.index(slices[0]), sources.index(slices[-1]) + 1
    span = sources[first:last]
    volume = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=span, combine_segments=True, skip_overlap_checks=True, ignore_spatial_locations=True,
        assert_missing_frames_are_empty=True,
    ).astype(np.uint8)
    return {
        "sop_instance_uid": instance.sop_instance_uid,
        "source_series_instance_uid": series_uid,
        "z_start": first,
        "z_end": last,
        "shape": list(volume.shape),
        "encoding": RLE_ENCODING,
        "data": rle_encode_b64(np.ascontiguousarray(volume)),
        "labels": labels,
        "sop_instance_uids": span,
    }


def _source_sop(ds) -> str | None:
    """The source image of a parametric map: Referenced Image Sequence, else the derivation in the shared or
    the first per-frame functional group (where highdicom writes it)."""
    try:
        return str(ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID)
    except (AttributeError, IndexError):
        pass
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        try:
            return str(getattr(ds, groups)[0].DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID)
        except (AttributeError, IndexError):
            continue
    return None


def heatmap_payload(instance: Instance) -> dict[str, Any] | None:
    ds = _read(instance)
    source = _source_sop(ds)
    if source is None:
        return None
    values = np.asarray(ds.pixel_array, dtype=np.float32)
    values = values[0] if values.ndim == 3 else values
    span = float(values.max() - values.min()) or 1.0
    gray = ((values - values.min()) / span * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, format="PNG")
    return {
        "sop_instance_uid": instance.sop_instance_uid,
        "source_sop_instance_uid": str(source),
        "shape": list(gray.shape),
        "png": base64.b64encode(buffer.getvalue()).decode(),
    }


def _classification_label(model_name: str) -> str:
    """The finding a classifier's positive result names (registry ``postprocessing.label``), as the live
    ``classification`` event carries it."""
    from inference.errors import ModelRegistryError
    from inference.registry import get_model_spec

    try:
        return str(get_model_spec(model_name).postprocessing.get("label", "nodule"))
    except (ModelRegistryError, KeyError, OSError):
        return ""


def complete_result(model_name: str, series_instance_uid: str, result: Any) -> Any:
    """A stored job's result in the shape of its live events: a classification names its ``label`` and the
    image it read (``sop_instance_uid``), also for jobs stored before the summary carried them."""
    if not isinstance(result, dict) or not isinstance(result.get("probability"), (int, float)):
        return result
    if result.get("label") and result.get("sop_instance_uid"):
        return result
    result = dict(result)
    if not result.get("label"):
        result["label"] = _classification_label(model_name) or "finding"
    if not result.get("sop_instance_uid"):
        uids = list(Instance.objects.filter(series__series_instance_uid=series_instance_uid)
                    .exclude(sop_class_uid__in=[SEG_CLASS, PMAP_CLASS])
                    .values_list("sop_instance_uid", flat=True)[:2])
        if len(uids) == 1:  # a radiograph series: the one image classified
            result["sop_instance_uid"] = uids[0]
    return result


def study_results(study_instance_uid: str) -> dict[str, Any]:
    instances = Instance.objects.filter(series__study__study_instance_uid=study_instance_uid)
    segs, heatmaps = [], []
    for inst in instances.filter(sop_class_uid=SEG_CLASS).order_by("-created")[:4]:
        if payload := segmentation_payload(inst):
            segs.append(payload)
    for inst in instances.filter(sop_class_uid=PMAP_CLASS).order_by("-created")[:4]:
        if payload := heatmap_payload(inst):
            heatmaps.append(payload)
    return {"segmentations": segs, "heatmaps": heatmaps}
