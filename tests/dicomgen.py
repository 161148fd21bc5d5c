"""Small synthetic DICOM files for tests (the demo data generator makes the big, realistic ones)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def make_ct_series(
    out_dir: Path,
    *,
    slices: int = 20,
    size: int = 64,
    patient_name: str = "Test^Small",
    patient_id: str = "SMALL-001",
    study_uid: str | None = None,
    study_date: str = "20240115",
    accession: str = "ACC-SMALL-1",
    description: str = "CT small synthetic",
    pixel_spacing: float = 0.7,
    slice_thickness: float = 1.25,
) -> list[Path]:
    """A CT series: a bright disc (200 HU) in water (0 HU) in air; returns the file paths in slice order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    frame_uid = generate_uid()
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2, xx - size / 2)
    paths = []
    for z in range(slices):
        hu = np.where(r < size * 0.45, 0, -1000).astype(np.int16)
        hu[r < size * (0.1 + 0.1 * z / max(slices - 1, 1))] = 200
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        sop_uid = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.PatientName = patient_name
        ds.PatientID = patient_id
        ds.PatientBirthDate = "19700101"
        ds.PatientSex = "O"
        ds.StudyDate = study_date
        ds.StudyTime = "101500"
        ds.AccessionNumber = accession
        ds.StudyDescription = description
        ds.StudyID = "1"
        ds.ReferringPhysicianName = "Ref^Doctor"
        ds.Modality = "CT"
        ds.SeriesNumber = 1
        ds.SeriesDescription = "Axial"
        ds.BodyPartExamined = "CHEST"
        ds.InstanceNumber = z + 1
        ds.ImagePositionPatient = [-size * pixel_spacing / 2, -size * pixel_spacing / 2, z * slice_thickness]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [pixel_spacing, pixel_spacing]
        ds.SliceThickness = slice_thickness
        ds.SliceLocation = z * slice_thickness
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ds.Columns = size
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.WindowCenter = 40
        ds.WindowWidth = 400
        ds.ContentDate = dt.date.today().strftime("%Y%m%d")
        ds.PixelData = (hu.astype(np.int32) + 1024).astype(np.uint16).tobytes()
        path = out_dir / f"slice{z:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
