"""Comprehensive 3D SR (TID 1500 Measurement Report) of nodule detections, and of a radiograph classification.

One volumetric measurement group per nodule, plus a group with the number of nodules found (also when it
is zero, so "analysed, nothing found" is explicit). A nodule group holds a tracking identifier, the centre as a 3D POINT
(``VolumeSurface``) referencing the CT image it lies on, and the long axis, short axis, equivalent diameter
and volume. The detection confidence has no standard concept in TID 1500; it is stored as a measurement
with a private code (scheme ``99LBX``) so no reader mistakes it for a probability of malignancy.
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

__all__ = [
    "build_nodule_report",
    "build_classification_report",
    "CONFIDENCE_CODE",
    "EQUIVALENT_DIAMETER_CODE",
]

CONFIDENCE_CODE = Code("LBX001", "99LBX", "AI detection confidence")
EQUIVALENT_DIAMETER_CODE = Code("LBX002", "99LBX", "Equivalent sphere diameter")
NODULE_PRESENT_CODE = Code("LBX003", "99LBX", "AI probability of nodule present")
NODULE_COUNT_CODE = Code("LBX004", "99LBX", "Number of nodules detected")
_CHEST_XRAY = Code("36643-5", "LN", "XR Chest 2 Views")
_UNITLESS = codes.UCUM.NoUnits


def _observation_context(
    model_name: str, model_version: str, manufacturer: str, serial: str
) -> hd.sr.ObservationContext:
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=generate_uid(),
        name=model_name,
        manufacturer_name=manufacturer,
        model_name=model_version,
        serial_number=serial,
    )
    return hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Device, observer_identifying_attributes=device
        )
    )


def build_nodule_report(
    source_images: Sequence[Dataset],
    detections: Sequence,
    *,
    model_name: str,
    model_version: str,
    frame_of_reference_uid: str,
    series_number: int = 902,
    manufacturer: str = "Lightbox",
    device_serial_number: str = "LIGHTBOX-AI-0001",
    referenced_segmentation: Dataset | None = None,
) -> hd.sr.Comprehensive3DSR:
    """TID 1500 report of :class:`~inference.pipelines.chest_ct.Detection` objects over the CT ``source_images``.

    ``source_images`` must contain the instances named by each detection's ``center_sop_instance_uid``.
    A report with no detections is still written: "analysed, nothing found" is a result.
    """
    by_uid = {str(ds.SOPInstanceUID): ds for ds in source_images}
    algo = hd.sr.AlgorithmIdentification(
        name=model_name, version=model_version, family=codes.DCM.ArtificialIntelligence
    )
    groups = []
    for det in detections:
        if det.center_sop_instance_uid not in by_uid:
            raise ValueError(
                f"detection {det.id} refers to {det.center_sop_instance_uid!r}, not among the source images."
            )
        image = by_uid[det.center_sop_instance_uid]
        point = hd.sr.VolumeSurface(
            graphic_type=hd.sr.GraphicTypeValues3D.POINT,
            graphic_data=np.array([det.center_mm], dtype=np.float64),
            frame_of_reference_uid=frame_of_reference_uid,
            source_images=[hd.sr.SourceImageForSegmentation.from_source_image(image)],
        )
        mm, mm3 = codes.UCUM.Millimeter, codes.UCUM.CubicMillimeter
        measurements = [
            hd.sr.Measurement(
                name=codes.SCT.LongAxis, value=round(det.long_axis_mm, 2), unit=mm, algorithm_id=algo
            ),
            hd.sr.Measurement(
                name=codes.SCT.ShortAxis, value=round(det.short_axis_mm, 2), unit=mm, algorithm_id=algo
            ),
            hd.sr.Measurement(
                name=EQUIVALENT_DIAMETER_CODE,
                value=round(det.equivalent_diameter_mm, 2),
                unit=mm,
                algorithm_id=algo,
            ),
            hd.sr.Measurement(
                name=codes.SCT.Volume, value=round(det.volume_mm3, 1), unit=mm3, algorithm_id=algo
            ),
            hd.sr.Measurement(
                name=CONFIDENCE_CODE, value=round(det.score, 4), unit=_UNITLESS, algorithm_id=algo
            ),
        ]
        groups.append(
            hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=generate_uid(), identifier=f"Nodule {det.id}"
                ),
                referenced_volume_surface=point,
                finding_type=codes.SCT.Nodule,
                algorithm_id=algo,
                finding_sites=[hd.sr.FindingSite(anatomic_location=codes.SCT.Lung)],
                measurements=measurements,
            )
        )
    # A series-level group with the count, so "analysed, nothing found" is an explicit result.
    groups.append(
        hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier="Nodule count"),
            algorithm_id=algo,
            measurements=[
                hd.sr.Measurement(
                    name=NODULE_COUNT_CODE, value=len(detections), unit=_UNITLESS, algorithm_id=algo
                )
            ],
        )
    )
    report = hd.sr.MeasurementReport(
        observation_context=_observation_context(
            model_name, model_version, manufacturer, device_serial_number
        ),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=groups,
        title=codes.DCM.ImagingMeasurementReport,
    )
    evidence = list(source_images) + (
        [referenced_segmentation] if referenced_segmentation is not None else []
    )
    return hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=report,
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=manufacturer,
        is_complete=True,
        is_final=False,
        is_verified=False,
        series_description=f"AI {model_name} nodules",
    )


def build_classification_report(
    image: Dataset,
    probability: float,
    *,
    model_name: str,
    model_version: str,
    series_number: int = 904,
    manufacturer: str = "Lightbox",
    device_serial_number: str = "LIGHTBOX-AI-0001",
) -> hd.sr.Comprehensive3DSR:
    """TID 1500 report holding the image-level probability that a nodule is present on a radiograph."""
    algo = hd.sr.AlgorithmIdentification(
        name=model_name, version=model_version, family=codes.DCM.ArtificialIntelligence
    )
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier="Nodule present"),
        finding_type=codes.SCT.Nodule,
        algorithm_id=algo,
        measurements=[
            hd.sr.Measurement(
                name=NODULE_PRESENT_CODE,
                value=round(float(probability), 4),
                unit=_UNITLESS,
                algorithm_id=algo,
                referenced_images=[hd.sr.SourceImageForMeasurement.from_source_image(image)],
            )
        ],
    )
    report = hd.sr.MeasurementReport(
        observation_context=_observation_context(
            model_name, model_version, manufacturer, device_serial_number
        ),
        procedure_reported=_CHEST_XRAY,
        imaging_measurements=[group],
        title=codes.DCM.ImagingMeasurementReport,
    )
    return hd.sr.Comprehensive3DSR(
        evidence=[image],
        content=report,
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=manufacturer,
        is_complete=True,
        series_description=f"AI {model_name} result",
    )
