"""The index: Patient, Study, Series, Instance, with every attribute QIDO-RS matches on or returns.

Query-heavy values are columns with indexes; everything else of an instance lives in its precomputed DICOM JSON
(``Instance.metadata``), built once at ingest so that metadata requests never re-read files.
Names follow the DICOM keywords in snake case.
"""
from __future__ import annotations

from django.db import models


class Patient(models.Model):
    patient_id = models.CharField(max_length=64, db_index=True, blank=True)
    issuer_of_patient_id = models.CharField(max_length=64, blank=True)
    patient_name = models.CharField(max_length=324, blank=True)  # PN as stored, e.g. "Doe^Jane"
    patient_name_search = models.CharField(max_length=324, blank=True, db_index=True)  # upper case, for matching
    patient_name_fuzzy = models.CharField(max_length=400, blank=True)  # " KEY KEY " phonetic keys per component
    patient_birth_date = models.CharField(max_length=8, blank=True)
    patient_sex = models.CharField(max_length=16, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patient_id", "issuer_of_patient_id"], name="unique_patient_identity")
        ]

    def __str__(self) -> str:
        return f"{self.patient_name} ({self.patient_id})"


class Study(models.Model):
    study_instance_uid = models.CharField(max_length=64, unique=True)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="studies")
    study_date = models.DateField(null=True, blank=True, db_index=True)
    study_time = models.CharField(max_length=16, blank=True)  # normalised HHMMSS.ffffff
    accession_number = models.CharField(max_length=64, blank=True, db_index=True)
    referring_physician_name = models.CharField(max_length=324, blank=True)
    study_id = models.CharField(max_length=16, blank=True)
    study_description = models.CharField(max_length=1024, blank=True)
    modalities_in_study = models.CharField(max_length=256, blank=True)  # "\\CT\\SR\\": wrapped for LIKE matching
    number_of_study_related_series = models.PositiveIntegerField(default=0)
    number_of_study_related_instances = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["study_date", "study_time"], name="study_date_time")]

    def __str__(self) -> str:
        return self.study_instance_uid

    @property
    def modalities(self) -> list[str]:
        return [m for m in self.modalities_in_study.split("\\") if m]


class Series(models.Model):
    series_instance_uid = models.CharField(max_length=64, unique=True)
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    modality = models.CharField(max_length=16, blank=True, db_index=True)
    series_number = models.IntegerField(null=True, blank=True)
    series_description = models.CharField(max_length=1024, blank=True)
    body_part_examined = models.CharField(max_length=16, blank=True)
    performed_procedure_step_start_date = models.DateField(null=True, blank=True)
    performed_procedure_step_start_time = models.CharField(max_length=16, blank=True)
    number_of_series_related_instances = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["study", "series_number"], name="series_in_study")]

    def __str__(self) -> str:
        return self.series_instance_uid


class Instance(models.Model):
    sop_instance_uid = models.CharField(max_length=64, unique=True)
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    sop_class_uid = models.CharField(max_length=64, db_index=True)
    instance_number = models.IntegerField(null=True, blank=True)
    rows = models.PositiveIntegerField(null=True, blank=True)
    columns = models.PositiveIntegerField(null=True, blank=True)
    bits_allocated = models.PositiveSmallIntegerField(null=True, blank=True)
    number_of_frames = models.PositiveIntegerField(null=True, blank=True)
    transfer_syntax_uid = models.CharField(max_length=64)
    photometric_interpretation = models.CharField(max_length=16, blank=True)
    # Where the file is: a key chosen by the server, never derived from input.
    storage_key = models.CharField(max_length=255, unique=True)
    file_size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    # DICOM JSON of the instance (no file meta), bulk data as BulkDataURI with a path-only URI.
    metadata = models.BinaryField()
    # Byte ranges of each frame in the file: [[[offset, length], ...fragments], ...frames]. Empty: no pixels.
    frame_index = models.JSONField(default=list, blank=True)
    # Sort key along the slice normal (mm), for volume order when instance numbers disagree.
    slice_position = models.FloatField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["series", "instance_number"], name="instance_in_series")]

    def __str__(self) -> str:
        return self.sop_instance_uid
