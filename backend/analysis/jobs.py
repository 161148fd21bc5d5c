"""Job life cycle: submit, cancel, record progress and partial results, finish, and reap the lost.

Every change goes to the database first, then out on the event bus, so a viewer that connects later gets the
same story from the snapshot.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from archive.models import Series
from events.bus import publish
from events.names import Event

from .models import FINAL_STATUSES, AnalysisJob, JobStatus, PartialResult

logger = logging.getLogger(__name__)

STALE_AFTER = dt.timedelta(seconds=int(getattr(settings, "LIGHTBOX_JOB_STALE_SECONDS", 300)))


def job_payload(job: AnalysisJob) -> dict[str, Any]:
    return {
        "job": str(job.id),
        "model": job.model_name,
        "series": job.series_instance_uid,
        "status": job.status,
        "progress": round(job.progress, 1),
        "stage": job.stage,
        "reason": job.reason,
        "result": job.result,
        "trigger": job.trigger,
        "created": job.created.isoformat() if job.created else None,
    }


def choose_queue() -> str:
    """``gpu`` when the deployment says GPU workers exist (LIGHTBOX_GPU_WORKERS=1), else ``cpu``."""
    import os

    return "gpu" if os.environ.get("LIGHTBOX_GPU_WORKERS", "") in {"1", "true", "yes"} else "cpu"


def submit(*, series: Series, model_name: str, user=None, trigger: str = "user") -> AnalysisJob:
    """Create a job and queue it (after commit, so the worker always finds the row)."""
    from .tasks import run_analysis

    job = AnalysisJob.objects.create(
        study_instance_uid=series.study.study_instance_uid,
        series_instance_uid=series.series_instance_uid,
        model_name=model_name,
        requested_by=user if getattr(user, "is_authenticated", False) else None,
        trigger=trigger,
        queue=choose_queue(),
    )
    transaction.on_commit(lambda: run_analysis.apply_async(args=[str(job.id)], queue=job.queue))
    publish(Event.ANALYSIS_QUEUED, job.study_instance_uid, job_payload(job))
    return job


def cancel(job: AnalysisJob) -> AnalysisJob:
    """Ask a job to stop. A queued job stops at once; a running one at its next slab."""
    with transaction.atomic():
        job = AnalysisJob.objects.select_for_update().get(pk=job.pk)
        if job.status in FINAL_STATUSES:
            return job
        job.cancel_requested = True
        if job.status == JobStatus.QUEUED:
            job.status = JobStatus.CANCELED
            job.finished = timezone.now()
        job.save()
    if job.status == JobStatus.CANCELED:
        publish(Event.ANALYSIS_CANCELED, job.study_instance_uid, job_payload(job))
    return job


def add_partial(job: AnalysisJob, kind: str, payload: dict[str, Any]) -> None:
    seq = (job.partials.aggregate(m=Max("seq"))["m"] or 0) + 1
    PartialResult.objects.create(job=job, seq=seq, kind=kind, payload=payload)
    publish(Event.ANALYSIS_PARTIAL, job.study_instance_uid, {"job": str(job.id), "seq": seq, "kind": kind, **payload})


def set_progress(job: AnalysisJob, percent: float, stage: str) -> None:
    job.progress, job.stage, job.heartbeat = float(percent), stage[:64], timezone.now()
    AnalysisJob.objects.filter(pk=job.pk).update(progress=job.progress, stage=job.stage, heartbeat=job.heartbeat)
    publish(Event.ANALYSIS_PROGRESS, job.study_instance_uid,
            {"job": str(job.id), "percent": round(job.progress, 1), "stage": job.stage})


def finish(job: AnalysisJob, status: JobStatus, *, reason: str = "", result: dict | None = None) -> None:
    job.status, job.reason, job.finished = status, reason, timezone.now()
    if result is not None:
        job.result = result
    if status == JobStatus.COMPLETED:
        job.progress = 100.0
    job.save(update_fields=["status", "reason", "finished", "result", "progress"])
    event = {
        JobStatus.COMPLETED: Event.ANALYSIS_DONE,
        JobStatus.FAILED: Event.ANALYSIS_FAILED,
        JobStatus.CANCELED: Event.ANALYSIS_CANCELED,
    }[status]
    publish(event, job.study_instance_uid, job_payload(job))


def reap_stale(now: dt.datetime | None = None) -> int:
    """Fail jobs whose worker stopped giving signs of life, so none stays "running" forever."""
    now = now or timezone.now()
    cutoff = now - STALE_AFTER
    stale = list(
        AnalysisJob.objects.filter(status=JobStatus.RUNNING, heartbeat__lt=cutoff)
        | AnalysisJob.objects.filter(status=JobStatus.QUEUED, created__lt=now - 12 * STALE_AFTER)
    )
    for job in stale:
        finish(job, JobStatus.FAILED, reason="The worker running this analysis stopped responding; start it again.")
    return len(stale)


def study_snapshot(study_instance_uid: str, user) -> dict[str, Any]:
    """The state so far of every job on a study, with the partial results of unfinished ones."""
    jobs = list(AnalysisJob.objects.filter(study_instance_uid=study_instance_uid)[:50])
    out = []
    for job in jobs:
        entry = job_payload(job)
        if job.status in {JobStatus.RUNNING, JobStatus.QUEUED}:
            entry["partials"] = [{"seq": p.seq, "kind": p.kind, **p.payload} for p in job.partials.all()]
        out.append(entry)
    return {"jobs": out}
