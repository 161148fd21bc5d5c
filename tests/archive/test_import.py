"""``manage.py import_dicom`` on folders of mixed content, against the live server's archive."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pydicom

from tests.archive.ingest_helpers import index_state, stored_files, unique_id
from tests.dicomgen import make_ct_series


def _digest(paths: list[Path]) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _mixed_folder(root: Path) -> tuple[list[Path], Path]:
    """3 slices at the top, 2 in a sub-folder, a text file, a truncated DICOM file."""
    top = make_ct_series(root, slices=3, size=32, patient_id=unique_id("IMP"))
    nested = make_ct_series(root / "deeper" / "still", slices=2, size=32, patient_id=unique_id("IMP"))
    (root / "README.txt").write_text("not DICOM\n")
    data = top[0].read_bytes()
    truncated = root / "deeper" / "broken.dcm"
    truncated.write_bytes(data[: len(data) // 2])
    return top + nested, truncated


def test_import_counts_and_reports_each_failure(live_server_proc, tmp_path):
    dicom, truncated = _mixed_folder(tmp_path / "mix")
    before_files = stored_files(live_server_proc)
    digests = _digest(dicom)
    done = live_server_proc.manage("import_dicom", str(tmp_path / "mix"), check=False)
    assert done.returncode == 1
    assert "stored 5, already present 0, skipped as non-DICOM 1, failed 1" in done.stdout
    assert f"failed: {truncated}:" in done.stderr and "truncated" in done.stderr
    assert len(stored_files(live_server_proc) - before_files) == 5
    assert _digest(dicom) == digests  # the user's files are copied, never moved or changed
    uids = [pydicom.dcmread(p).SOPInstanceUID for p in dicom]
    assert all(index_state(live_server_proc, instances=uids)["instances"].values())

    again = live_server_proc.manage("import_dicom", "--no-progress", str(tmp_path / "mix"), check=False)
    assert "stored 0, already present 5, skipped as non-DICOM 1, failed 1" in again.stdout
    assert again.returncode == 1


def test_import_of_good_files_exits_zero_and_respects_no_recursive(live_server_proc, tmp_path):
    top = make_ct_series(tmp_path / "flat", slices=2, size=32, patient_id=unique_id("IMP"))
    make_ct_series(tmp_path / "flat" / "sub", slices=2, size=32, patient_id=unique_id("IMP"))
    done = live_server_proc.manage("import_dicom", "--no-recursive", "--no-progress", str(tmp_path / "flat"),
                                   check=False)
    assert done.returncode == 0, done.stderr
    assert "stored 2, already present 0, skipped as non-DICOM 0, failed 0" in done.stdout
    single = live_server_proc.manage("import_dicom", "--no-progress", str(top[0]), check=False)
    assert single.returncode == 0 and "already present 1" in single.stdout


def test_import_of_a_missing_path_fails_cleanly(live_server_proc, tmp_path):
    done = live_server_proc.manage("import_dicom", "--no-progress", str(tmp_path / "nowhere"), check=False)
    assert done.returncode == 1
    assert "no such file or folder" in done.stderr
    assert "Traceback" not in done.stderr
