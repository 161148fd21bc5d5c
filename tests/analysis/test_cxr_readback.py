"""A radiograph's AI results reopened: the stored Grad-CAM parametric map and the classification come back
from `/api/analysis/studies/<uid>/results/` (backend/analysis/readback.py) as the live events showed them."""
from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread

from inference.phantoms import make_chest_radiograph, write_cr
from tests.analysis.helpers import store

PMAP_CLASS = "1.2.840.10008.5.1.4.1.1.30"


@pytest.fixture(scope="module")
def cxr(live_server_proc, tmp_path_factory):
    """A stored chest radiograph with a nodule (MONOCHROME1, like the demo); returns (study UID, its SOP UID)."""
    phantom = make_chest_radiograph(510_123, nodule=True)
    path = write_cr(phantom, tmp_path_factory.mktemp("cxr") / "chest.dcm", patient_name="Phantom^Readback",
                    patient_id="LBX-AI-CXR", monochrome1=True)
    return store(live_server_proc, [path]), str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def _run_job(server, study: str) -> dict:
    r = server.session().post(f"{server.url}/api/analysis/jobs/",
                              json={"study_instance_uid": study, "model": "cxr-nodule-classifier"}, timeout=30)
    assert r.status_code == 202, r.text
    job_id, deadline = r.json()["id"], time.time() + 180
    while (job := server.session().get(f"{server.url}/api/analysis/jobs/{job_id}/", timeout=30).json())[
        "status"
    ] in {"queued", "running"} and time.time() < deadline:
        time.sleep(0.3)
    assert job["status"] == "completed", job
    return job


def test_stored_heatmap_and_classification_are_read_back_with_their_source_and_label(live_server_proc, cxr):
    server = live_server_proc
    study, cr_sop = cxr
    job = _run_job(server, study)
    # the finished job names what the live `classification` event named
    assert job["result"]["label"] == "nodule"
    assert job["result"]["sop_instance_uid"] == cr_sop
    pmap = [o for o in job["result"]["objects"] if o["sop_class_uid"] == PMAP_CLASS]
    assert len(pmap) == 1

    reread = server.session().get(f"{server.url}/api/analysis/studies/{study}/results/", timeout=60)
    assert reread.status_code == 200, reread.text
    body = reread.json()
    heatmaps = {h["sop_instance_uid"]: h for h in body["heatmaps"]}
    assert set(heatmaps) == {pmap[0]["sop_instance_uid"]}
    heatmap = heatmaps[pmap[0]["sop_instance_uid"]]
    assert heatmap["source_sop_instance_uid"] == cr_sop  # drawn over the radiograph it was computed on
    image = np.asarray(Image.open(io.BytesIO(base64.b64decode(heatmap["png"]))))
    assert list(image.shape) == heatmap["shape"] == [1024, 1024]  # same size as the radiograph
    assert image.max() == 255 and image.min() == 0  # the saliency, scaled, not an empty map

    reopened = {j["id"]: j for j in body["jobs"]}[job["id"]]["result"]
    assert reopened["label"] == "nodule" and reopened["sop_instance_uid"] == cr_sop
    assert reopened["probability"] == job["result"]["probability"]
    assert reopened["positive"] is True


def test_a_classification_stored_without_its_label_is_reopened_with_it(live_server_proc, cxr):
    """Jobs finished before the summary carried the label and image (older versions) get them on readback."""
    server = live_server_proc
    study, cr_sop = cxr
    job = _run_job(server, study)
    strip = (
        "from analysis.models import AnalysisJob; j = AnalysisJob.objects.get(pk=JOB); "
        "j.result = {k: v for k, v in j.result.items() if k not in ('label', 'sop_instance_uid')}; j.save()"
    )
    server.manage("shell", "-c", strip.replace("JOB", repr(job["id"])))
    listed = server.session().get(f"{server.url}/api/analysis/jobs/{job['id']}/", timeout=30).json()["result"]
    body = server.session().get(f"{server.url}/api/analysis/studies/{study}/results/", timeout=60).json()
    reopened = {j["id"]: j for j in body["jobs"]}[job["id"]]["result"]
    for result in (listed, reopened):
        assert result["label"] == "nodule" and result["sop_instance_uid"] == cr_sop
