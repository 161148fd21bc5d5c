"""The benchmark's DICOM data: the demo-sized CT, copies of it under fresh UIDs, small studies, seed studies.

The 300-slice 512x512 CT is generated once (``inference.phantoms``, as ``manage.py load_demo`` does) and cached
under bench/out/cache. Each STOW or C-STORE run sends a copy whose UIDs are re-rooted byte for byte (same length,
header only), so every run stores new instances without regenerating 150 MB of files.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_ROOT_UID, ExplicitVRLittleEndian, SecondaryCaptureImageStorage

from tests.dicomgen import make_ct_series

BENCH_DIR = Path(__file__).resolve().parent
CACHE = BENCH_DIR / "out" / "cache"
CT_PATIENT = ("Phantom^Chest", "LBX-BENCH-CT")
PIXEL_DATA_OW = b"\xe0\x7f\x10\x00OW"  # (7FE0,0010) in explicit VR little endian: the header ends here
_ROOT = PYDICOM_ROOT_UID.encode()  # "1.2.826.0.1.3680043.8.498." : every UID of the generated CT starts with it


@dataclass
class CtSeries:
    """One copy of the CT in memory: the files' bytes and the UIDs they carry, in slice order."""
    study_uid: str
    series_uid: str
    sop_uids: list[str]
    blobs: list[bytes]

    @property
    def middle_sop(self) -> str:
        return self.sop_uids[len(self.sop_uids) // 2]

    def write(self, out_dir: Path) -> list[Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for n, blob in enumerate(self.blobs, start=1):
            path = out_dir / f"CT{n:04d}.dcm"
            path.write_bytes(blob)
            paths.append(path)
        return paths


def demo_ct(slices: int = 300) -> CtSeries:
    """The demo chest CT (seed 7, 512x512, 16-bit), generated on first use and then read from the cache."""
    folder = CACHE / f"ct-{slices}"
    manifest = folder / "manifest.json"
    if not manifest.exists():
        from inference.phantoms import make_chest_ct, write_ct_series

        phantom = make_chest_ct(7, shape=(slices, 512, 512))
        paths = write_ct_series(
            phantom, folder, patient_name=CT_PATIENT[0], patient_id=CT_PATIENT[1], accession_number="BENCH-CT-1",
            study_description="CT CHEST WITHOUT CONTRAST", study_date="20260110", study_time="093000",
        )
        sops = [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths]
        first = pydicom.dcmread(paths[0], stop_before_pixels=True)
        manifest.write_text(json.dumps({
            "study": str(first.StudyInstanceUID), "series": str(first.SeriesInstanceUID),
            "files": [p.name for p in paths], "sops": sops,
        }))
    info = json.loads(manifest.read_text())
    blobs = [(folder / name).read_bytes() for name in info["files"]]
    return CtSeries(info["study"], info["series"], info["sops"], blobs)


class UidRoots:
    """Hands out UID roots of the same length as pydicom's, distinct within one run."""

    def __init__(self, seed: int | None = None) -> None:
        prefix = PYDICOM_ROOT_UID.rsplit(".", 2)[0]  # "1.2.826.0.1.3680043.8"
        numbers = [n for n in range(100, 1000) if str(n) != PYDICOM_ROOT_UID.split(".")[-2]]
        random.Random(seed).shuffle(numbers)
        self._roots = (f"{prefix}.{n}." for n in numbers)

    def next(self) -> str:
        return next(self._roots)


def rerooted(ct: CtSeries, root: str, count: int | None = None) -> CtSeries:
    """A copy of ``ct`` (its first ``count`` slices) whose UIDs start with ``root`` instead of pydicom's root."""
    new = root.encode()
    assert len(new) == len(_ROOT), "a new root must keep every UID's length (and so the file's layout)"
    blobs = []
    for blob in ct.blobs[:count]:
        end = blob.find(PIXEL_DATA_OW)
        end = end if end > 0 else len(blob)
        blobs.append(blob[:end].replace(_ROOT, new) + blob[end:])

    def swap(uid: str) -> str:
        return root + uid[len(PYDICOM_ROOT_UID):] if uid.startswith(PYDICOM_ROOT_UID) else uid

    return CtSeries(swap(ct.study_uid), swap(ct.series_uid), [swap(s) for s in ct.sop_uids[:count]], blobs)


SMALL_NAMES = ["SMITH^JOHN", "SMYTH^JANE", "JONES^MARY", "BROWN^PAUL", "GARCIA^ANNA", "MILLER^PETER",
               "DAVIS^LINDA", "WILSON^MARIE", "TAYLOR^JAMES", "MOORE^SARAH"]


def small_studies(out_dir: Path, count: int = 10, slices: int = 5) -> list[list[Path]]:
    """``count`` small CT studies (64x64 slices), one patient each, one study a month from January 2020."""
    studies = []
    for n in range(count):
        name = SMALL_NAMES[n % len(SMALL_NAMES)]
        studies.append(make_ct_series(
            out_dir / f"study{n:02d}", slices=slices, size=64, patient_name=name, patient_id=f"BENCH-{n:03d}",
            study_date=f"2020{n % 12 + 1:02d}15", accession=f"BENCH-ACC-{n:03d}", description="CT small bench",
        ))
    return studies


SURNAMES = ("SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ", "MARTINEZ",
            "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON", "THOMAS", "TAYLOR", "MOORE", "JACKSON", "MARTIN",
            "LEE", "PEREZ", "THOMPSON", "WHITE", "HARRIS", "SANCHEZ", "CLARK", "RAMIREZ", "LEWIS", "ROBINSON",
            "WALKER", "YOUNG", "ALLEN", "KING", "WRIGHT", "SCOTT", "TORRES", "NGUYEN", "HILL", "FLORES",
            "SMYTH", "SCHMIDT", "MULLER", "DUBOIS", "ROSSI", "SILVA", "KOWALSKI", "NOVAK", "JANSEN", "MEYER")
GIVEN = ("JAMES", "MARY", "ROBERT", "PATRICIA", "JOHN", "JENNIFER", "MICHAEL", "LINDA", "DAVID", "ELIZABETH",
         "WILLIAM", "BARBARA", "RICHARD", "SUSAN", "JOSEPH", "JESSICA", "THOMAS", "SARAH", "CHARLES", "KAREN")


def seed_instances(count: int, seed: int = 1) -> list[bytes]:
    """``count`` one-instance studies (8x8 secondary capture) with names, IDs and dates spread like
    ``manage.py seed_index``: 50 surnames, two studies for three patients, dates from 2015 over 11 years.

    One file is written with placeholders of fixed length, then copied with the placeholders replaced (pydicom
    per study would take 20 s for 10,000)."""
    rng = random.Random(seed)
    base = rng.randrange(10**11, 10**12 - 10**9)
    patients = max(1, count * 2 // 3)
    first_day = dt.date(2015, 1, 1).toordinal()
    template = _seed_template()
    names = [f"{rng.choice(SURNAMES)}^{rng.choice(GIVEN)}".ljust(24).encode() for _ in range(patients)]
    out = []
    for n in range(count):
        p = rng.randrange(patients)
        date = dt.date.fromordinal(first_day + rng.randint(0, 4000)).strftime("%Y%m%d")
        out.append(template.replace(_SEED_UID, str(base + n).encode()).replace(b"Q" * 24, names[p])
                   .replace(b"W" * 14, f"OSEED-{p:08d}".encode()).replace(b"19000101", date.encode())
                   .replace(b"K" * 10, f"S{n:09d}".encode()))
    return out


_SEED_UID = b"987654321012"


def _seed_template() -> bytes:
    uid = f"1.2.826.0.1.3680043.8.498.77.{_SEED_UID.decode()}"
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.StudyInstanceUID = uid + ".1"
    ds.SeriesInstanceUID = uid + ".2"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid + ".3"
    ds.PatientName = "Q" * 24
    ds.PatientID = "W" * 14
    ds.StudyDate = "19000101"
    ds.AccessionNumber = "K" * 10
    ds.Modality = "OT"
    ds.StudyTime = "101500"
    ds.ReferringPhysicianName = "REFERRER^ROSE"
    ds.StudyDescription = "SEED STUDY"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = np.arange(64, dtype=np.uint16).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


