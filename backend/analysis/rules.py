"""Start analyses automatically when new series arrive (listens to the archive's signal)."""
from __future__ import annotations

import logging

from django.dispatch import receiver

from archive.models import Series
from archive.signals import instances_stored

from .models import AutoRule

logger = logging.getLogger(__name__)


@receiver(instances_stored, dispatch_uid="analysis-auto-rules")
def on_instances_stored(sender, outcomes, **kwargs) -> None:
    if not AutoRule.objects.filter(enabled=True).exists():
        return
    from .tasks import AUTO_QUIET_SECONDS, auto_analyze

    for series_uid in {o.series_instance_uid for o in outcomes}:
        series = Series.objects.filter(series_instance_uid=series_uid).only(
            "modality", "number_of_series_related_instances"
        ).first()
        if series is None or series.modality in {"SEG", "SR", "KO", "PR"}:
            continue  # never analyse results
        try:
            auto_analyze.apply_async(args=[series_uid, series.number_of_series_related_instances],
                                     countdown=AUTO_QUIET_SECONDS, queue="cpu")
        except Exception:
            logger.exception("could not schedule automatic analysis of %s", series_uid)
