"""Write the demo studies as DICOM files (synthetic phantoms with known ground truth, plus pydicom's samples)."""
from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file

from inference.phantoms import (
    make_brain_mr,
    make_chest_ct,
    make_chest_radiograph,
    write_cr,
    write_ct_series,
    write_ground_truth,
    write_mr_series,
)

from .uids import CR_STUDY, CT_STUDY, MR_STUDY, demo_uid

CT_SEED, MR_SEED, CR_SEED = 7, 11, 5

# pydicom's bundled samples: (file, reason it is in the demo). Variants of one instance get fresh UIDs.
SAMPLES: list[tuple[str, str]] = [
    ("CT_small.dcm", "small CT, explicit VR little endian"),
    ("MR_small.dcm", "small MR"),
    ("MR_small_RLE.dcm", "RLE lossless"),
    ("MR_small_jpeg_ls_lossless.dcm", "JPEG-LS lossless"),
    ("MR_small_jp2klossless.dcm", "JPEG 2000 lossless"),
    ("JPEG2000.dcm", "JPEG 2000"),
    ("SC_rgb_jpeg_dcmd.dcm", "JPEG baseline colour"),
    ("SC_rgb_rle_2frame.dcm", "multi-frame RLE colour"),
]


def write_ct(out_dir: Path, slices: int | None = None) -> tuple[list[Path], Path]:
    """The demo chest CT (300 slices of 512x512 unless ``slices``) and its ground-truth JSON."""
    shape = (slices, 512, 512) if slices else None
    phantom = make_chest_ct(CT_SEED, **({"shape": shape} if shape else {}))
    paths = write_ct_series(
        phantom,
        out_dir / "ct",
        patient_name="Phantom^Chest",
        patient_id="LBX-DEMO-CT",
        study_instance_uid=CT_STUDY,
        series_instance_uid=demo_uid("ct-chest", "series", str(slices or 300)),
        frame_of_reference_uid=demo_uid("ct-chest", "for"),
        accession_number="DEMO-CT-001",
        study_description="CT CHEST WITHOUT CONTRAST",
        study_date="20260110",
        study_time="093000",
        referring_physician_name="Referrer^Rita",
    )
    truth = write_ground_truth(phantom, out_dir / "ct_ground_truth.json", study_instance_uid=CT_STUDY)
    return paths, truth


def write_mr(out_dir: Path) -> list[Path]:
    phantom = make_brain_mr(MR_SEED)
    return write_mr_series(
        phantom,
        out_dir / "mr",
        patient_name="Phantom^Brain",
        patient_id="LBX-DEMO-MR",
        study_instance_uid=MR_STUDY,
        series_instance_uid=demo_uid("mr-brain", "series"),
        frame_of_reference_uid=demo_uid("mr-brain", "for"),
        accession_number="DEMO-MR-001",
        study_date="20260212",
        study_time="141500",
    )


def write_radiograph(out_dir: Path) -> list[Path]:
    phantom = make_chest_radiograph(CR_SEED, nodule=True)
    path = write_cr(
        phantom,
        out_dir / "cr" / "chest_pa.dcm",
        patient_name="Phantom^Xray",
        patient_id="LBX-DEMO-CR",
        study_instance_uid=CR_STUDY,
        series_instance_uid=demo_uid("cr-chest", "series"),
        accession_number="DEMO-CR-001",
        study_date="20260301",
        study_time="080000",
        monochrome1=True,
    )
    write_ground_truth(phantom, out_dir / "cr_ground_truth.json", study_instance_uid=CR_STUDY)
    return [path]


def _sample_files() -> Iterator[tuple[str, Path]]:
    for name, _why in SAMPLES:
        path = get_testdata_file(name, download=False)  # never fetch: only files in pydicom's wheel
        if path:
            yield name, Path(path)


def write_samples(out_dir: Path) -> list[Path]:
    """Copy pydicom's samples; the MR_small variants share UIDs, so each variant gets its own."""
    out = out_dir / "samples"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, src in _sample_files():
        dest = out / name
        if name.startswith("MR_small_"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(src)
            ds.SeriesInstanceUID = demo_uid("sample", name, "series")
            ds.SOPInstanceUID = demo_uid("sample", name, "sop")
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.SeriesDescription = f"MR small, {name.removeprefix('MR_small_').removesuffix('.dcm')}"
            ds.save_as(dest)
        else:
            shutil.copyfile(src, dest)
        paths.append(dest)
    return paths
