"""The measurements API under /api/viewer/ (per user and study) and the DICOM SR export."""
from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.log import record

from .models import Measurement
from .permissions import CanViewStudy
from .serializers import MeasurementSerializer

logger = logging.getLogger(__name__)


class StudyScopedView(APIView):
    permission_classes = [CanViewStudy]

    def measurements(self):
        return Measurement.objects.filter(user=self.request.user, study_instance_uid=self.kwargs["study_uid"])


class MeasurementListView(StudyScopedView):
    """GET: my measurements on the study. POST: create one (an existing UID is replaced, as with PUT)."""

    def get(self, request: Request, study_uid: str) -> Response:
        return Response(MeasurementSerializer(self.measurements(), many=True).data)

    def post(self, request: Request, study_uid: str) -> Response:
        uid = request.data.get("uid") if isinstance(request.data, dict) else None
        if not uid:
            return Response({"uid": ["This field is required."]}, status=status.HTTP_400_BAD_REQUEST)
        return _upsert(request, study_uid, str(uid))


class MeasurementDetailView(StudyScopedView):
    """GET, PUT (create or replace, keyed by the annotation UID) and DELETE one measurement."""

    def get(self, request: Request, study_uid: str, uid: str) -> Response:
        return Response(MeasurementSerializer(get_object_or_404(self.measurements(), uid=uid)).data)

    def put(self, request: Request, study_uid: str, uid: str) -> Response:
        return _upsert(request, study_uid, uid)

    def delete(self, request: Request, study_uid: str, uid: str) -> Response:
        deleted, _ = self.measurements().filter(uid=uid).delete()
        if not deleted:
            return Response({"detail": "No such measurement."}, status=status.HTTP_404_NOT_FOUND)
        record(request.user, "viewer.measurement.delete", request=request, study_instance_uid=study_uid, uid=uid)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _upsert(request: Request, study_uid: str, uid: str) -> Response:
    data = dict(request.data) if isinstance(request.data, dict) else {}
    if data.get("uid", uid) != uid:
        return Response({"uid": ["does not match the URL"]}, status=status.HTTP_400_BAD_REQUEST)
    data["uid"] = uid
    existing = Measurement.objects.filter(user=request.user, study_instance_uid=study_uid, uid=uid).first()
    serializer = MeasurementSerializer(existing, data=data)
    serializer.is_valid(raise_exception=True)
    try:
        with transaction.atomic():
            obj = serializer.save(user=request.user, study_instance_uid=study_uid)
    except IntegrityError:  # a concurrent PUT created it first: replace that one
        existing = Measurement.objects.get(user=request.user, study_instance_uid=study_uid, uid=uid)
        serializer = MeasurementSerializer(existing, data=data)
        serializer.is_valid(raise_exception=True)
        obj = serializer.save(user=request.user, study_instance_uid=study_uid)
    record(
        request.user, "viewer.measurement.save", request=request, study_instance_uid=study_uid,
        series_instance_uid=obj.series_instance_uid, uid=uid, kind=obj.kind,
    )
    return Response(
        MeasurementSerializer(obj).data, status=status.HTTP_200_OK if existing else status.HTTP_201_CREATED
    )


class ExportSrView(StudyScopedView):
    """POST: write my measurements on the study as a DICOM SR (TID 1500) and store it in the archive."""

    def post(self, request: Request, study_uid: str) -> Response:
        from .export import ExportError, export_measurements_as_sr

        measurements = list(self.measurements())
        if not measurements:
            return Response({"detail": "There are no measurements to export."}, status=status.HTTP_400_BAD_REQUEST)
        try:
            result = export_measurements_as_sr(measurements, study_uid, observer=_observer_name(request.user))
        except ExportError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        record(
            request.user, "viewer.measurement.export_sr", request=request, study_instance_uid=study_uid,
            series_instance_uid=result["series_instance_uid"], sop_instance_uid=result["sop_instance_uid"],
            measurements=len(measurements),
        )
        return Response(result, status=status.HTTP_201_CREATED)


def _observer_name(user) -> str:
    last, first = (user.last_name or "").strip(), (user.first_name or "").strip()
    return f"{last}^{first}" if last or first else user.get_username()


