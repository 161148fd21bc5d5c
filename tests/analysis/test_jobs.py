"""The live AI loop as readers see it: start a job, watch it stream, find the results stored as DICOM."""
from __future__ import annotations

import asyncio
import time

import highdicom as hd
import pytest
from dicomweb_client import DICOMwebClient
from websockets.asyncio.client import connect

from tests.analysis.helpers import auth_header, collect, store
from tests.dicomgen import make_ct_series

SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"


def _submit(server, study: str, role: str = "radiologist", **extra):
    return server.session(role).post(
        f"{server.url}/api/analysis/jobs/", json={"study_instance_uid": study, **extra}, timeout=30
    )


@pytest.fixture(scope="module")
def ct_study(live_server_proc, small_chest_ct) -> str:
    return store(live_server_proc, small_chest_ct)


def test_models_are_listed(live_server_proc):
    models = live_server_proc.session().get(f"{live_server_proc.url}/api/analysis/models/", timeout=30).json()
    by_name = {m["name"]: m for m in models}
    assert "CT" in by_name["chest-ct-nodules"]["modalities"]


def test_start_needs_a_role_that_runs_ai_and_access_to_the_study(live_server_proc, ct_study):
    assert _submit(live_server_proc, ct_study, role="technologist", model="chest-ct-nodules").status_code == 403
    assert _submit(live_server_proc, ct_study, role="resident", model="chest-ct-nodules").status_code == 403
    r = _submit(live_server_proc, ct_study, model="no-such-model")
    assert r.status_code == 400 and "available" in str(r.json()["model"])
    r = _submit(live_server_proc, "1.2.3/../4", model="chest-ct-nodules")
    assert r.status_code == 400


def test_job_streams_partials_to_every_viewer_and_stores_seg_and_sr(live_server_proc, ct_study):
    server = live_server_proc
    url = f"{server.ws_url}/ws/studies/{ct_study}/"

    async def run():
        async with connect(url, additional_headers=auth_header(server)) as first:
            await collect(first, {"snapshot"}, None, 10)
            r = await asyncio.to_thread(_submit, server, ct_study, model="chest-ct-nodules")
            assert r.status_code == 202, r.text
            job = r.json()["id"]
            # the first viewer waits for the first partial mask...
            events = await collect(first, {"analysis.partial"}, job, 120)
            # ...then a second viewer joins mid-job and must catch up from the snapshot
            async with connect(url, additional_headers=auth_header(server)) as late:
                snapshot = (await collect(late, {"snapshot"}, None, 10))[-1]
                jobs = {j["job"]: j for j in snapshot["payload"]["analysis"]["jobs"]}
                caught_up = jobs[job]
                events += await collect(first, {"analysis.done", "analysis.failed"}, job, 300)
                late_events = await collect(late, {"analysis.done", "analysis.failed"}, job, 60)
            return job, events, caught_up, late_events

    job, events, caught_up, late_events = asyncio.run(run())
    names = [e["event"] for e in events if (e.get("payload") or {}).get("job") == job]
    assert names[-1] == "analysis.done", events[-1]
    assert "analysis.started" in names and "analysis.progress" in names
    first_partial = names.index("analysis.partial")
    assert first_partial < names.index("analysis.done")
    masks = [e["payload"] for e in events if e["event"] == "analysis.partial" and e["payload"]["kind"] == "mask"]
    assert len(masks) >= 2, "the segmentation should arrive slab by slab"
    assert masks[0]["encoding"] == "rle-u8-u32le" and len(masks[0]["sop_instance_uids"]) == masks[0]["shape"][0]
    assert caught_up["status"] == "running" and caught_up["partials"], "a late viewer gets the state so far"
    assert late_events[-1]["event"] == "analysis.done"

    result = events[-1]["payload"]["result"]
    assert len(result["detections"]) >= 1
    uids = {o["sop_class_uid"]: o for o in result["objects"]}
    assert SEG_CLASS in uids and COMPREHENSIVE_3D_SR in uids

    # the results are visible through QIDO and readable by any DICOMweb client
    client = DICOMwebClient(url=server.dicomweb, session=server.session())
    modalities = {s["00080060"]["Value"][0] for s in client.search_for_series(study_instance_uid=ct_study)}
    assert {"CT", "SEG", "SR"} <= modalities
    seg_ref = uids[SEG_CLASS]
    seg = hd.seg.Segmentation.from_dataset(client.retrieve_instance(
        ct_study, seg_ref["series_instance_uid"], seg_ref["sop_instance_uid"]))
    ct_uids = {i["00080018"]["Value"][0] for i in client.search_for_instances(
        study_instance_uid=ct_study, search_filters={"Modality": "CT"})}
    assert {u for _, _, u in seg.get_source_image_uids()} <= ct_uids

    # a reopened viewer gets the stored results back
    reread = server.session().get(f"{server.url}/api/analysis/studies/{ct_study}/results/", timeout=60).json()
    assert reread["segmentations"] and reread["segmentations"][0]["labels"]["nodule"]
    assert reread["jobs"][0]["id"] == job


def test_a_model_refuses_a_series_it_cannot_read_and_stores_nothing(live_server_proc, tmp_path):
    """An MR for a CT model, and a CT whose pixel data is corrupt: failed with a reason, nothing stored."""
    server = live_server_proc
    mr = make_ct_series(tmp_path / "mr", slices=24, size=64, patient_name="Wrong^Modality")
    import pydicom

    for p in mr:
        ds = pydicom.dcmread(p)
        ds.Modality = "MR"
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
        ds.save_as(p)
    mr_study = store(server, mr)
    corrupt = make_ct_series(tmp_path / "bad", slices=24, size=64, patient_name="Corrupt^Pixels")
    for p in corrupt:
        ds = pydicom.dcmread(p)
        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.50"  # claims JPEG: the bytes are not
        ds.PixelData = pydicom.encaps.encapsulate([b"\xff\xd8not a jpeg at all" * 10])
        ds["PixelData"].VR = "OB"
        ds.save_as(p, enforce_file_format=True)
    bad_study = store(server, corrupt)

    for study, words in ((mr_study, "MR"), (bad_study, "pixel")):
        series = DICOMwebClient(url=server.dicomweb, session=server.session()).search_for_series(study)[0]
        r = _submit(server, study, model="chest-ct-nodules", series_instance_uid=series["0020000E"]["Value"][0])
        assert r.status_code == 202, r.text
        job = r.json()["id"]
        deadline = time.time() + 120
        while (state := server.session().get(f"{server.url}/api/analysis/jobs/{job}/", timeout=30).json())[
            "status"
        ] in {"queued", "running"} and time.time() < deadline:
            time.sleep(0.5)
        assert state["status"] == "failed"
        assert words.lower() in state["reason"].lower(), state["reason"]
        client = DICOMwebClient(url=server.dicomweb, session=server.session())
        assert {s["00080060"]["Value"][0] for s in client.search_for_series(study)} == {"MR" if study == mr_study else "CT"}


def test_cancel_stops_a_running_job(live_server_proc, ct_study):
    server = live_server_proc
    url = f"{server.ws_url}/ws/studies/{ct_study}/"

    async def run():
        async with connect(url, additional_headers=auth_header(server)) as ws:
            await collect(ws, {"snapshot"}, None, 10)
            job = (await asyncio.to_thread(_submit, server, ct_study, model="chest-ct-nodules")).json()["id"]
            await collect(ws, {"analysis.partial"}, job, 120)
            r = await asyncio.to_thread(server.session().post, f"{server.url}/api/analysis/jobs/{job}/cancel/",
                                        timeout=30)
            assert r.status_code == 202
            return await collect(ws, {"analysis.canceled", "analysis.done", "analysis.failed"}, job, 120)

    events = asyncio.run(run())
    assert events[-1]["event"] == "analysis.canceled"
