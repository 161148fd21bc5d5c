"""Celery tasks: thin wrappers that take IDs, find files, call the pipeline and record what happens.

Late acknowledgement (settings) means a worker killed mid-job leaves the message to be delivered again; the
retry takes over when the dead worker's heartbeat is stale, and skips when a live worker holds the job.
"""
from __future__ import annotations

import logging
import socket
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from celery import shared_task
from celery.signals import worker_ready
from django.db import close_old_connections, transaction
from django.utils import timezone

from archive.models import Instance, Series
from archive.storage import get_storage
from events.bus import publish
from events.names import Event

from . import jobs, pipeline
from .models import AnalysisJob, AutoRule, JobStatus

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.0
TAKEOVER_AFTER = timedelta(seconds=15)  # a running job with an older heartbeat belongs to a dead worker
PROGRESS_MIN_INTERVAL = 0.2  # seconds between progress events (partials are never throttled)


def _claim(job_id: str) -> AnalysisJob | None:
    """Mark the job running for this worker, unless it is final or a live worker already runs it."""
    with transaction.atomic():
        job = AnalysisJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status in {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED}:
            return None
        now = timezone.now()
        if job.status == JobStatus.RUNNING and job.heartbeat and now - job.heartbeat < TAKEOVER_AFTER:
            return None  # a duplicate delivery while the first worker is alive
        if job.cancel_requested:
            job.status = JobStatus.CANCELED
            job.finished = now
            job.save()
            publish(Event.ANALYSIS_CANCELED, job.study_instance_uid, jobs.job_payload(job))
            return None
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.worker = f"{socket.gethostname()}:{threading.get_ident()}"
        job.started = job.started or now
        job.heartbeat = now
        job.progress = 0
        job.stage = "starting"
        job.save()
        job.partials.all().delete()  # a retry streams again from the start
    publish(Event.ANALYSIS_STARTED, job.study_instance_uid, jobs.job_payload(job))
    return job


def _series_paths(job: AnalysisJob, tmp: Path) -> list[Path]:
    """Local paths of the series' files in slice order (the indexed position along the normal, then the
    instance number), so a volume model can start on the first slices before reading every header. Object
    stores are copied to a temporary folder first."""
    storage = get_storage()
    paths = []
    rows = Instance.objects.filter(series__series_instance_uid=job.series_instance_uid).values_list(
        "storage_key", "slice_position", "instance_number"
    )
    ordered = sorted(rows, key=lambda r: (r[1] is None, r[1] or 0.0, r[2] or 0))
    for key, _position, _number in ordered:
        local = storage.local_path(key)
        if local is None:
            local = tmp / key.replace("/", "_")
            with storage.open(key) as src, open(local, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
        paths.append(local)
    return paths


class _Heartbeat:
    """Keeps the job's heartbeat fresh from a side thread while the model computes."""

    def __init__(self, job_id):
        self.job_id = job_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"heartbeat-{job_id}")

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                AnalysisJob.objects.filter(pk=self.job_id, status=JobStatus.RUNNING).update(heartbeat=timezone.now())
            except Exception:
                logger.exception("heartbeat failed")
            finally:
                close_old_connections()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _warm_models() -> None:
    try:
        from inference.jobs import warm_up

        warm_up()
    except Exception:  # a model that cannot load fails its jobs with the reason; the worker must live on
        logger.exception("warming the models failed")


@worker_ready.connect
def warm_models_when_ready(sender=None, **kwargs) -> None:
    """Load every model's weights and run it once in the worker's process as soon as the worker is ready (in a
    side thread, so jobs are accepted meanwhile): the first job then pays neither (~1-2 s on the CPU).
    ``LIGHTBOX_AI_WARM=0`` turns it off."""
    import os

    if os.environ.get("LIGHTBOX_AI_WARM", "1").lower() in {"0", "false", "no"}:
        return
    threading.Thread(target=_warm_models, name="warm-models", daemon=True).start()


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=3, name="analysis.run")
def run_analysis(self, job_id: str) -> str:
    """Run one analysis job to its end: completed, failed with a reason, or canceled. Never raises."""
    from inference.errors import InferenceCancelled, InferenceInputError, ModelRegistryError

    picked_up = time.monotonic()
    job = _claim(job_id)
    if job is None:
        return "skipped"
    last_progress = 0.0
    # Where the wait before the first partial goes: queue (created -> claimed) and worker (claimed -> first).
    waits = {"queue": round((job.heartbeat - job.created).total_seconds(), 3)}

    def on_event(kind: str, payload: dict) -> None:
        nonlocal last_progress
        if kind == "partial_mask" and "first_partial" not in waits:
            waits["first_partial"] = round(time.monotonic() - picked_up, 3)
        if kind == "progress":
            now = time.monotonic()
            if now - last_progress >= PROGRESS_MIN_INTERVAL or payload.get("percent", 0) >= 100:
                last_progress = now
                jobs.set_progress(job, payload.get("percent", 0), str(payload.get("stage", "")))
        elif kind in {"partial_mask", "detection", "classification"}:
            jobs.add_partial(job, "mask" if kind == "partial_mask" else kind, payload)
        # "result" events name objects that are stored (and announced) after the pipeline returns

    def should_cancel() -> bool:
        return AnalysisJob.objects.filter(pk=job.pk, cancel_requested=True).exists()

    try:
        with tempfile.TemporaryDirectory(prefix="lightbox-job-") as tmp, _Heartbeat(job.pk):
            paths = _series_paths(job, Path(tmp))
            if not paths:
                raise InferenceInputError("The series has no instances in the archive (was it deleted?).")
            result = pipeline.run(job.model_name, paths, on_event, should_cancel)
            if should_cancel():  # asked for during the last slab or post-processing: store nothing
                raise InferenceCancelled()
            jobs.set_progress(job, 99, "storing results")
            from .results import store_datasets

            outcomes = store_datasets(list(result.datasets))
        summary = dict(result.summary)
        summary["timings_s"] = {**summary.get("timings_s", {}), "job": waits}
        summary.pop("results", None)  # replaced by "objects", which adds the series each was stored in
        summary["objects"] = [
            {"sop_class_uid": o.sop_class_uid, "sop_instance_uid": o.sop_instance_uid,
             "series_instance_uid": o.series_instance_uid}
            for o in outcomes
        ]
        jobs.finish(job, JobStatus.COMPLETED, result=summary)
        return "completed"
    except InferenceCancelled:
        jobs.finish(job, JobStatus.CANCELED, reason="Canceled by a user.")
        return "canceled"
    except InferenceInputError as exc:
        jobs.finish(job, JobStatus.FAILED, reason=exc.reason)
        return "failed"
    except ModelRegistryError as exc:  # weights or config missing: the message names the fix for an admin
        jobs.finish(job, JobStatus.FAILED, reason=f"The model cannot be loaded: {exc}")
        return "failed"
    except Exception as exc:  # a bug or a broken file must fail the job, never the worker
        logger.exception("analysis %s failed", job_id)
        jobs.finish(job, JobStatus.FAILED, reason=f"The analysis failed unexpectedly ({type(exc).__name__}); "
                                                  "the error is in the server log.")
        return "failed"
    finally:
        close_old_connections()


AUTO_QUIET_SECONDS = 5.0


@shared_task(name="analysis.auto", acks_late=True)
def auto_analyze(series_instance_uid: str, seen_instances: int) -> str:
    """Start the matching rules' models once a series has stopped growing (no new instance for a while)."""
    series = Series.objects.select_related("study").filter(series_instance_uid=series_instance_uid).first()
    if series is None:
        return "gone"
    if series.number_of_series_related_instances != seen_instances:
        auto_analyze.apply_async(args=[series_instance_uid, series.number_of_series_related_instances],
                                 countdown=AUTO_QUIET_SECONDS, queue="cpu")
        return "still growing"
    started = 0
    known = pipeline.model_names()
    for rule in AutoRule.objects.filter(enabled=True):
        if rule.model_name not in known or not rule.matches(
            series.modality, series.body_part_examined, series.series_description, seen_instances
        ):
            continue
        if AnalysisJob.objects.filter(series_instance_uid=series_instance_uid, model_name=rule.model_name).exclude(
            status__in=[JobStatus.FAILED, JobStatus.CANCELED]
        ).exists():
            continue
        jobs.submit(series=series, model_name=rule.model_name, trigger="auto")
        started += 1
    return f"started {started}"
