"""Write phantoms as DICOM files a PACS or viewer accepts, plus their ground truth as JSON.

CT and MR go out one file per slice (classic single-frame IODs, Explicit VR Little Endian) with full
geometry: Image Position/Orientation (Patient), Pixel Spacing, Slice Thickness, Frame of Reference. CT
pixels are stored unsigned with Rescale Intercept -1024, the most common scanner encoding, so loaders that
forget the rescale fail visibly. Slices are numbered head to feet (InstanceNumber 1 is the top slice), as
head-first scanners do; readers must sort by position, not by file name.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ComputedRadiographyImageStorage,
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

from inference.phantoms.types import Phantom, RadiographPhantom

__all__ = ["write_ct_series", "write_mr_series", "write_cr", "write_ground_truth", "MANUFACTURER"]

MANUFACTURER = "Lightbox"
_MODEL_NAME = "Lightbox Synthetic Phantom"
_SOFTWARE = "lightbox-inference 0.1.0"


def _check_common(patient_name: str, patient_id: str, study_date: str | None) -> None:
    if not isinstance(patient_name, str) or not patient_name or len(patient_name) > 64:
        raise ValueError(f"patient_name must be a DICOM PN such as 'Phantom^Alice', got {patient_name!r}.")
    if not isinstance(patient_id, str) or not patient_id or len(patient_id) > 64:
        raise ValueError(
            f"patient_id must be a non-empty string of at most 64 characters, got {patient_id!r}."
        )
    if study_date is not None and (len(study_date) != 8 or not study_date.isdigit()):
        raise ValueError(f"study_date must be YYYYMMDD, got {study_date!r}.")


def _base_dataset(
    *,
    sop_class_uid: str,
    modality: str,
    patient_name: str,
    patient_id: str,
    patient_birth_date: str,
    patient_sex: str,
    study_instance_uid: str,
    series_instance_uid: str,
    accession_number: str,
    study_description: str,
    series_description: str,
    study_date: str,
    study_time: str,
    series_number: int,
    study_id: str,
    body_part_examined: str,
    referring_physician_name: str,
    institution_name: str,
) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "LIGHTBOX_010"

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class_uid
    ds.StudyDate = study_date
    ds.SeriesDate = study_date
    ds.ContentDate = study_date
    ds.AcquisitionDate = study_date
    ds.StudyTime = study_time
    ds.SeriesTime = study_time
    ds.ContentTime = study_time
    ds.AccessionNumber = accession_number
    ds.Modality = modality
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = _MODEL_NAME
    ds.SoftwareVersions = _SOFTWARE
    ds.DeviceSerialNumber = "PHANTOM-0001"
    ds.InstitutionName = institution_name
    ds.ReferringPhysicianName = referring_physician_name
    ds.StudyDescription = study_description
    ds.SeriesDescription = series_description
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = patient_birth_date
    ds.PatientSex = patient_sex
    ds.PatientIdentityRemoved = "NO"
    ds.BodyPartExamined = body_part_examined
    ds.StudyInstanceUID = study_instance_uid
    ds.SeriesInstanceUID = series_instance_uid
    ds.StudyID = study_id
    ds.SeriesNumber = series_number
    ds.BurnedInAnnotation = "NO"
    return ds


def _now_date_time(study_date: str | None) -> tuple[str, str]:
    now = _dt.datetime.now()
    return (study_date or now.strftime("%Y%m%d")), now.strftime("%H%M%S")


def _fmt(values: Sequence[float]) -> list[str]:
    """DS strings of at most 16 characters."""
    return [f"{float(v):.6g}" for v in values]


def _write_slices(
    ds: Dataset,
    phantom: Phantom,
    stored: np.ndarray,
    out_dir: Path,
    prefix: str,
) -> list[Path]:
    """Write one file per slice, mutating one template dataset (far faster than building 300 datasets)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sz, sy, sx = phantom.spacing
    ox, oy, oz = phantom.origin
    nz = phantom.shape[0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = _fmt([sy, sx])
    ds.SliceThickness = _fmt([sz])[0]
    ds.SpacingBetweenSlices = _fmt([sz])[0]
    ds.Rows, ds.Columns = int(phantom.shape[1]), int(phantom.shape[2])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PositionReferenceIndicator = ""
    paths: list[Path] = []
    width = max(4, len(str(nz)))
    for number, k in enumerate(range(nz - 1, -1, -1), start=1):
        sop_uid = generate_uid()
        ds.SOPInstanceUID = sop_uid
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
        ds.InstanceNumber = number
        z = oz + k * sz
        ds.ImagePositionPatient = _fmt([ox, oy, z])
        ds.SliceLocation = _fmt([z])[0]
        ds.PixelData = np.ascontiguousarray(stored[k]).tobytes()
        path = out_dir / f"{prefix}{number:0{width}d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_ct_series(
    phantom: Phantom,
    out_dir: str | Path,
    *,
    patient_name: str = "Phantom^Alice",
    patient_id: str = "LBX-PH-0001",
    study_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    accession_number: str = "",
    study_description: str = "CT CHEST WITHOUT CONTRAST",
    series_description: str = "Axial 1.25mm Lung",
    study_date: str | None = None,
    study_time: str | None = None,
    series_number: int = 2,
    study_id: str = "1",
    patient_birth_date: str = "19600101",
    patient_sex: str = "O",
    body_part_examined: str = "CHEST",
    referring_physician_name: str = "",
    institution_name: str = "Lightbox Phantom Lab",
    window: tuple[float, float] = (-600.0, 1500.0),
) -> list[Path]:
    """Write a CT phantom as a CT Image Storage series, one file per slice; return the paths (top slice first).

    Pixels are uint16 = HU + 1024 (clipped to 0..4095), Rescale Slope 1, Intercept -1024. ``window`` is the
    default (center, width), a lung window.
    """
    if phantom.modality != "CT":
        raise ValueError(f"write_ct_series needs a CT phantom, got modality {phantom.modality!r}.")
    _check_common(patient_name, patient_id, study_date)
    date, now_time = _now_date_time(study_date)
    ds = _base_dataset(
        sop_class_uid=CTImageStorage,
        modality="CT",
        patient_name=patient_name,
        patient_id=patient_id,
        patient_birth_date=patient_birth_date,
        patient_sex=patient_sex,
        study_instance_uid=study_instance_uid or generate_uid(),
        series_instance_uid=series_instance_uid or generate_uid(),
        accession_number=accession_number,
        study_description=study_description,
        series_description=series_description,
        study_date=date,
        study_time=study_time or now_time,
        series_number=series_number,
        study_id=study_id,
        body_part_examined=body_part_examined,
        referring_physician_name=referring_physician_name,
        institution_name=institution_name,
    )
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.FrameOfReferenceUID = frame_of_reference_uid or generate_uid()
    ds.PatientPosition = "HFS"
    ds.KVP = "120"
    ds.ConvolutionKernel = "LUNG"
    ds.AcquisitionNumber = 1
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenter = _fmt([window[0]])[0]
    ds.WindowWidth = _fmt([window[1]])[0]
    stored = np.clip(phantom.volume.astype(np.int32) + 1024, 0, 4095).astype(np.uint16)
    return _write_slices(ds, phantom, stored, Path(out_dir), "CT")


def write_mr_series(
    phantom: Phantom,
    out_dir: str | Path,
    *,
    patient_name: str = "Phantom^Bob",
    patient_id: str = "LBX-PH-0002",
    study_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    accession_number: str = "",
    study_description: str = "MR BRAIN WITHOUT CONTRAST",
    series_description: str = "Ax T1 SE",
    study_date: str | None = None,
    study_time: str | None = None,
    series_number: int = 3,
    study_id: str = "1",
    patient_birth_date: str = "19700101",
    patient_sex: str = "O",
    body_part_examined: str = "HEAD",
    referring_physician_name: str = "",
    institution_name: str = "Lightbox Phantom Lab",
) -> list[Path]:
    """Write an MR phantom as an MR Image Storage series (T1 spin echo attributes), one file per slice."""
    if phantom.modality != "MR":
        raise ValueError(f"write_mr_series needs an MR phantom, got modality {phantom.modality!r}.")
    _check_common(patient_name, patient_id, study_date)
    date, now_time = _now_date_time(study_date)
    ds = _base_dataset(
        sop_class_uid=MRImageStorage,
        modality="MR",
        patient_name=patient_name,
        patient_id=patient_id,
        patient_birth_date=patient_birth_date,
        patient_sex=patient_sex,
        study_instance_uid=study_instance_uid or generate_uid(),
        series_instance_uid=series_instance_uid or generate_uid(),
        accession_number=accession_number,
        study_description=study_description,
        series_description=series_description,
        study_date=date,
        study_time=study_time or now_time,
        series_number=series_number,
        study_id=study_id,
        body_part_examined=body_part_examined,
        referring_physician_name=referring_physician_name,
        institution_name=institution_name,
    )
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.FrameOfReferenceUID = frame_of_reference_uid or generate_uid()
    ds.PatientPosition = "HFS"
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.RepetitionTime = "500"
    ds.EchoTime = "12"
    ds.EchoTrainLength = 1
    ds.MagneticFieldStrength = "1.5"
    ds.ImagingFrequency = "63.87"
    ds.ImagedNucleus = "1H"
    ds.FlipAngle = "90"
    ds.AcquisitionNumber = 1
    ds.PixelRepresentation = 0
    stored = np.clip(phantom.volume.astype(np.int32), 0, 65535).astype(np.uint16)
    hi = float(np.percentile(stored, 99.5))
    ds.WindowCenter = _fmt([hi / 2])[0]
    ds.WindowWidth = _fmt([max(hi, 1.0)])[0]
    return _write_slices(ds, phantom, stored, Path(out_dir), "MR")


def write_cr(
    radiograph: RadiographPhantom,
    out_path: str | Path,
    *,
    patient_name: str = "Phantom^Carol",
    patient_id: str = "LBX-PH-0003",
    study_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
    accession_number: str = "",
    study_description: str = "XR CHEST PA",
    series_description: str = "PA",
    study_date: str | None = None,
    study_time: str | None = None,
    series_number: int = 1,
    study_id: str = "1",
    patient_birth_date: str = "19800101",
    patient_sex: str = "O",
    referring_physician_name: str = "",
    institution_name: str = "Lightbox Phantom Lab",
    modality: str = "CR",
    monochrome1: bool = False,
) -> Path:
    """Write a chest radiograph as CR Image Storage (``modality="CR"``) or DX For Presentation (``"DX"``).

    MONOCHROME2 by default (bone bright). ``monochrome1=True`` stores inverted values with MONOCHROME1, as
    many CR plates do, so viewers that ignore the photometric interpretation show it wrong, visibly.
    """
    if modality not in ("CR", "DX"):
        raise ValueError(f"modality must be 'CR' or 'DX', got {modality!r}.")
    _check_common(patient_name, patient_id, study_date)
    date, now_time = _now_date_time(study_date)
    ds = _base_dataset(
        sop_class_uid=ComputedRadiographyImageStorage
        if modality == "CR"
        else DigitalXRayImageStorageForPresentation,
        modality=modality,
        patient_name=patient_name,
        patient_id=patient_id,
        patient_birth_date=patient_birth_date,
        patient_sex=patient_sex,
        study_instance_uid=study_instance_uid or generate_uid(),
        series_instance_uid=series_instance_uid or generate_uid(),
        accession_number=accession_number,
        study_description=study_description,
        series_description=series_description,
        study_date=date,
        study_time=study_time or now_time,
        series_number=series_number,
        study_id=study_id,
        body_part_examined="CHEST",
        referring_physician_name=referring_physician_name,
        institution_name=institution_name,
    )
    image = np.asarray(radiograph.image, dtype=np.uint16)
    max_value = 4095
    center, width = 2048.0, 4096.0
    if monochrome1:
        image = (max_value - np.minimum(image, max_value)).astype(np.uint16)
        center = max_value - center
    sop_uid = generate_uid()
    ds.SOPInstanceUID = sop_uid
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.InstanceNumber = 1
    ds.PatientOrientation = ["L", "F"]  # PA view seen from behind: columns to patient left, rows to feet
    ds.ViewPosition = "PA"
    ds.ImageType = ["ORIGINAL", "PRIMARY"] if modality == "CR" else ["ORIGINAL", "PRIMARY", ""]
    ds.ImagerPixelSpacing = _fmt(radiograph.spacing)
    ds.PixelSpacing = _fmt(radiograph.spacing)
    ds.KVP = "120"
    if modality == "DX":
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.DetectorType = "SCINTILLATOR"
        ds.PixelIntensityRelationship = "LOG"
        ds.PixelIntensityRelationshipSign = 1
        ds.RescaleIntercept = "0"
        ds.RescaleSlope = "1"
        ds.RescaleType = "US"
        ds.Laterality = ""
        ds.PatientOrientation = ["L", "F"]
        ds.LossyImageCompression = "00"
    ds.Rows, ds.Columns = (int(v) for v in image.shape)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = _fmt([center])[0]
    ds.WindowWidth = _fmt([width])[0]
    ds.PixelData = np.ascontiguousarray(image).tobytes()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(out_path, enforce_file_format=True)
    return out_path


def write_ground_truth(phantom: Phantom | RadiographPhantom, path: str | Path, **extra: object) -> Path:
    """Write the phantom's ground truth (nodules in patient mm for CT) as JSON; ``extra`` keys are added,
    e.g. the StudyInstanceUID the series was written with."""
    data = phantom.ground_truth()
    data.update(extra)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True))
    return path
