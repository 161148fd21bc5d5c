"""REST API of analyses: start (202 + job), read, cancel, list a study's jobs, list the models."""
from __future__ import annotations

from django.db.models import Count
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.access import can_view_study
from accounts.roles import Capability, has_capability
from archive.models import Series
from audit.log import record

from . import jobs, pipeline
from .models import AnalysisJob
from .serializers import JobSerializer, SubmitSerializer


def _job_for(request: Request, job_id: str) -> AnalysisJob:
    job = AnalysisJob.objects.filter(pk=job_id).first() if _is_uuid(job_id) else None
    if job is None or not can_view_study(request.user, job.study_instance_uid):
        raise NotFound("No such analysis job.")
    return job


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
        return True
    except ValueError:
        return False


def _pick_series(study_uid: str, model) -> Series:
    """The series a model should read: of its modality, with the most instances."""
    candidates = Series.objects.select_related("study").filter(study__study_instance_uid=study_uid)
    if model.modalities:
        candidates = candidates.filter(modality__in=model.modalities)
    series = candidates.annotate(n=Count("instances")).order_by("-n").first()
    if series is None:
        raise ValidationError({"series_instance_uid": (
            f"The study has no {'/'.join(model.modalities)} series for {model.name}; choose a series."
        )})
    return series


@api_view(["GET"])
def model_list(request: Request) -> Response:
    return Response([m.as_dict() for m in pipeline.available_models()])


@api_view(["GET", "POST"])
def job_list(request: Request) -> Response:
    if request.method == "POST":
        return _submit(request)
    study = request.query_params.get("study", "")
    if not study:
        raise ValidationError({"study": "Give the study: ?study=<StudyInstanceUID>."})
    if not can_view_study(request.user, study):
        raise PermissionDenied("You do not have access to this study.")
    jobs.reap_stale()
    return Response(JobSerializer(AnalysisJob.objects.filter(study_instance_uid=study)[:100], many=True).data)


def _submit(request: Request) -> Response:
    if not has_capability(request.user, Capability.RUN_AI):
        raise PermissionDenied("Your role may not start analyses.")
    form = SubmitSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    study_uid = form.validated_data["study_instance_uid"]
    if not can_view_study(request.user, study_uid):
        raise PermissionDenied("You do not have access to this study.")
    models = {m.name: m for m in pipeline.available_models()}
    model = models.get(form.validated_data["model"])
    if model is None:
        raise ValidationError({"model": f"Unknown model; available: {', '.join(sorted(models))}."})
    series_uid = form.validated_data.get("series_instance_uid")
    if series_uid:
        series = Series.objects.select_related("study").filter(
            series_instance_uid=series_uid, study__study_instance_uid=study_uid
        ).first()
        if series is None:
            raise NotFound("No such series in this study.")
    else:
        series = _pick_series(study_uid, model)
    job = jobs.submit(series=series, model_name=model.name, user=request.user)
    record(request.user, "analysis.start", request=request, study_instance_uid=study_uid,
           series_instance_uid=series.series_instance_uid, model=model.name, job=str(job.id))
    return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


@api_view(["GET"])
def job_detail(request: Request, job_id: str) -> Response:
    jobs.reap_stale()
    return Response(JobSerializer(_job_for(request, job_id)).data)


@api_view(["POST"])
def job_cancel(request: Request, job_id: str) -> Response:
    job = _job_for(request, job_id)
    if not has_capability(request.user, Capability.RUN_AI):
        raise PermissionDenied("Your role may not cancel analyses.")
    job = jobs.cancel(job)
    record(request.user, "analysis.cancel", request=request, study_instance_uid=job.study_instance_uid, job=str(job.id))
    return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


@api_view(["GET"])
def study_results(request: Request, study_uid: str) -> Response:
    """Stored AI results of a study (SEG labelmaps, heatmaps) decoded from the archive, plus the findings."""
    from .readback import study_results as read_results

    if not can_view_study(request.user, study_uid):
        raise PermissionDenied("You do not have access to this study.")
    payload = read_results(study_uid)
    done = AnalysisJob.objects.filter(study_instance_uid=study_uid, status="completed").order_by("-finished")
    payload["jobs"] = JobSerializer(done[:20], many=True).data
    record(request.user, "analysis.results", request=request, study_instance_uid=study_uid, coalesce=True)
    return Response(payload)
