"""The production topology: web and Celery worker as separate processes on Redis and PostgreSQL.

A worker killed with SIGKILL mid-job must not lose the job: late acknowledgement returns the message to
Redis, and a new worker takes the job over once the dead one's heartbeat is stale, and completes it.
"""
from __future__ import annotations

import time

import pytest

from tests.analysis.helpers import store


@pytest.fixture(scope="module")
def production_server(live_server_proc):
    if not live_server_proc.production:
        pytest.skip("needs LIGHTBOX_TEST_MODE=production (scripts/test.sh runs this module that way)")
    return live_server_proc


def _job(server, job_id: str) -> dict:
    return server.session().get(f"{server.url}/api/analysis/jobs/{job_id}/", timeout=30).json()


def test_a_job_survives_its_worker_being_killed(production_server, small_chest_ct):
    server = production_server
    study = store(server, small_chest_ct)
    r = server.session().post(f"{server.url}/api/analysis/jobs/",
                              json={"study_instance_uid": study, "model": "chest-ct-nodules"}, timeout=30)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]

    deadline = time.time() + 120
    while (state := _job(server, job_id))["status"] != "running" or state["progress"] < 5:
        assert time.time() < deadline, state
        assert state["status"] in {"queued", "running"}, state
        time.sleep(0.2)
    server.kill_workers()
    assert _job(server, job_id)["status"] == "running"  # nobody finished it
    server.start_worker()

    deadline = time.time() + 300
    while (state := _job(server, job_id))["status"] in {"queued", "running"}:
        assert time.time() < deadline, f"job never completed after the worker loss: {state}"
        time.sleep(1)
    assert state["status"] == "completed", state
    assert state["attempts"] == 2
