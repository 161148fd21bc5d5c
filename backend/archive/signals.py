"""Signals other apps listen to (the archive knows none of them)."""
from django.dispatch import Signal

# sent once per batch after commit: outcomes=list[StoreOutcome] of stored (not duplicate) instances
instances_stored = Signal()
# sent after a study or series is deleted: study_instance_uid=..., series_instance_uid=... or None
resource_deleted = Signal()
