"""The C-STORE / C-ECHO SCP of the live server, driven by pynetdicom as SCU and by dcmtk's echoscu/storescu."""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification

from tests.archive.ingest_helpers import (  # noqa: F401 (restricted_server is a fixture)
    index_state,
    restricted_server,
    staging_files,
    stored_files,
    unique_id,
)
from tests.dicomgen import make_ct_series

needs_dcmtk = pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk (storescu, echoscu) not installed")


def _series(tmp_path: Path, n: int = 4) -> list[Path]:
    return make_ct_series(tmp_path / unique_id("s"), slices=n, size=32, patient_id=unique_id("SCU"))


def _associate(server, calling: str = "TESTSCU"):
    ae = AE(ae_title=calling)
    ae.add_requested_context(CTImageStorage, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    ae.add_requested_context(Verification)
    return ae.associate(server.host, server.dicom_port, ae_title="LIGHTBOX")


def _wait_for_audit(server, study_uid: str, action: str = "cstore.store", timeout: float = 10) -> dict:
    """The end-of-association work (notify, audit) runs just after release: poll for it."""
    deadline = time.time() + timeout
    while True:
        state = index_state(server, studies=[study_uid])
        if any(a[0] == action for a in state["audit"]) or time.time() > deadline:
            return state
        time.sleep(0.2)


def test_c_echo_answers_success(live_server_proc):
    assoc = _associate(live_server_proc)
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()


@needs_dcmtk
def test_echoscu(live_server_proc):
    done = subprocess.run(["echoscu", "-aec", "LIGHTBOX", live_server_proc.host, str(live_server_proc.dicom_port)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_pynetdicom_stores_a_series_and_it_is_indexed(live_server_proc, tmp_path):
    paths = _series(tmp_path, 5)
    assoc = _associate(live_server_proc)
    statuses = [assoc.send_c_store(pydicom.dcmread(p)).Status for p in paths]
    assoc.release()
    assert statuses == [0x0000] * 5
    study_uid = pydicom.dcmread(paths[0]).StudyInstanceUID
    state = _wait_for_audit(live_server_proc, study_uid)
    study = state["studies"][study_uid]
    assert study["instances"] == 5 and study["rows"] == 5 and study["modalities"] == "\\CT\\"
    audit = next(a for a in state["audit"] if a[0] == "cstore.store")
    assert audit[2]["stored"] == 5 and audit[2]["calling_ae"] == "TESTSCU"


@needs_dcmtk
def test_storescu_stores_files_as_sent(live_server_proc, tmp_path):
    paths = _series(tmp_path, 6)
    done = subprocess.run(
        ["storescu", "-aet", "DCMTKSCU", "-aec", "LIGHTBOX", live_server_proc.host, str(live_server_proc.dicom_port),
         *map(str, paths)],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    first = pydicom.dcmread(paths[0])
    state = index_state(live_server_proc, studies=[first.StudyInstanceUID], instances=[first.SOPInstanceUID])
    assert state["studies"][first.StudyInstanceUID]["instances"] == 6
    stored = live_server_proc.data_dir / "dicom" / state["instances"][first.SOPInstanceUID]["storage_key"]
    kept = pydicom.dcmread(stored)
    assert kept.file_meta.SourceApplicationEntityTitle == "DCMTKSCU"
    assert kept.PixelData == first.PixelData  # the data set as sent, not re-encoded
    # sent again by another sender: same data set, so a success and nothing new
    before = stored_files(live_server_proc)
    assoc = _associate(live_server_proc, calling="OTHERSCU")
    assert assoc.send_c_store(paths[0]).Status == 0x0000
    assoc.release()
    assert stored_files(live_server_proc) == before


def test_corrupt_data_sets_fail_and_the_association_survives(live_server_proc, tmp_path):
    paths = _series(tmp_path, 3)
    data = paths[0].read_bytes()
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(data[: len(data) - 500])  # pynetdicom sends a file's data set bytes as they are
    changed = pydicom.dcmread(paths[2])
    changed.PatientName = "Different^Content"
    before = stored_files(live_server_proc)
    assoc = _associate(live_server_proc)
    first = assoc.send_c_store(truncated)
    assert first.Status == 0xC000
    assert "truncated" in first.ErrorComment.lower() or "pixel data" in first.ErrorComment.lower()
    assert assoc.is_established
    assert assoc.send_c_store(paths[1]).Status == 0x0000
    assert assoc.send_c_store(paths[2]).Status == 0x0000
    duplicate = assoc.send_c_store(changed)  # same SOP Instance UID, different content
    assert duplicate.Status == 0x0111
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()
    assert len(stored_files(live_server_proc) - before) == 2
    assert staging_files(live_server_proc) == []
    uid0 = pydicom.dcmread(paths[0]).SOPInstanceUID
    assert index_state(live_server_proc, instances=[uid0])["instances"][uid0] is None


def test_an_aborted_association_still_announces_what_it_stored(live_server_proc, tmp_path):
    paths = _series(tmp_path, 2)
    assoc = _associate(live_server_proc)
    assert [assoc.send_c_store(p).Status for p in paths] == [0, 0]
    assoc.abort()
    state = _wait_for_audit(live_server_proc, pydicom.dcmread(paths[0]).StudyInstanceUID)
    assert any(a[0] == "cstore.store" and a[2]["stored"] == 2 for a in state["audit"])


def test_calling_ae_titles_can_be_restricted(restricted_server, tmp_path):  # noqa: F811
    refused = _associate(restricted_server, calling="STRANGER")
    assert not refused.is_established and refused.is_rejected
    allowed = _associate(restricted_server, calling="ALLOWEDSCU")
    assert allowed.is_established
    assert allowed.send_c_store(_series(tmp_path, 1)[0]).Status == 0x0000
    allowed.release()
