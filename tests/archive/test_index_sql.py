"""The plain-SQL index write (``archive.index_sql``) writes the rows the ORM path wrote, refuses what it refused,
and keeps concurrent stores of one new study from losing counts or doubling rows (SQLite and PostgreSQL)."""
from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

import pytest
from django.db import IntegrityError, connection, connections, transaction
from pydicom.uid import generate_uid

from archive.dicom import DicomError, ParsedInstance, parse_file
from archive.index_sql import Item, held_instances, index_batch
from archive.models import Instance, Patient, Series, Study
from tests.archive.orm_index import orm_index_batch
from tests.dicomgen import make_ct_series


@pytest.fixture(scope="module")
def slices(tmp_path_factory) -> list[ParsedInstance]:
    return [parse_file(p) for p in make_ct_series(tmp_path_factory.mktemp("index-sql"), slices=3, size=16)]


def variant(parsed: ParsedInstance, *, study: str | None = None, series: str | None = None, modality: str | None = None,
            patient: dict | None = None, sop: str | None = None) -> ParsedInstance:
    """A copy of ``parsed`` with other UIDs or values (the index reads only these dicts)."""
    out = dataclasses.replace(parsed, patient={**parsed.patient, **(patient or {})}, study=dict(parsed.study),
                              series=dict(parsed.series), instance=dict(parsed.instance))
    if study:
        out.study["study_instance_uid"] = study
    if series:
        out.series["series_instance_uid"] = series
    if modality is not None:
        out.series["modality"] = modality
    out.instance["sop_instance_uid"] = sop or generate_uid()
    return out


def items(parsed: list[ParsedInstance]) -> list[Item]:
    return [Item(p, f"ab/{p.sop_instance_uid}.dcm", 1000 + n) for n, p in enumerate(parsed)]


def scenario(slices: list[ParsedInstance]) -> list[list[Item]]:
    """Batches covering creation, reuse, a nameless patient named later, modality order, refusals."""
    base = slices[0]
    s1, s2, s3 = generate_uid(), generate_uid(), generate_uid()
    a, b, c, d, e = (generate_uid() for _ in range(5))
    nameless = {"patient_name": "", "patient_name_search": "", "patient_name_fuzzy": ""}
    other = {"patient_id": "OTHER-1", "patient_name": "", "patient_name_search": "", "patient_name_fuzzy": ""}
    named_other = {"patient_id": "OTHER-1", "patient_name": "Roe^Rick", "patient_name_search": "ROE^RICK",
                   "patient_name_fuzzy": " R "}
    first = [variant(s, study=s1, series=a, patient=nameless) for s in slices]
    return [
        items(first + [variant(base, study=s1, series=b, modality="SR", patient=nameless) for _ in range(2)]),
        items([variant(s, study=s1, series=a) for s in slices[:2]] + [variant(base, study=s1, series=c, modality="MR")]
              + [variant(base, study=s2, series=d, modality="", patient={"patient_id": "NEW-2"})]),
        items([variant(base, study=s2, series=a)]),  # a series of another study
        items([first[0], variant(base, study=s1, series=a)]),  # a SOP Instance UID already held
        items([variant(base, study=s1, series=e, modality="CT")]),
        items([variant(base, study=s3, series=generate_uid(), modality="SR", patient=other),
               variant(base, study=s3, series=generate_uid(), modality="CT", patient=named_other),
               variant(base, study=s3, series=generate_uid(), modality="CT", patient=other)]),
        items([variant(base, study=s3, series=generate_uid()), variant(base, study=s2, series=generate_uid())]),
    ]


def run(batches: list[list[Item]], index: Callable[[list[Item]], None]) -> list[str]:
    outcomes = []
    for batch in batches:
        try:
            with transaction.atomic():
                index(batch)
            outcomes.append("ok")
        except (DicomError, IntegrityError) as exc:
            outcomes.append(type(exc).__name__)
    return outcomes


def snapshot() -> dict:
    """Every index row by its natural key, without ids and timestamps (checked to be set)."""
    def values(qs, drop: set[str]) -> list[dict]:
        rows = list(qs.values())
        for row in rows:
            assert all(row[k] is not None for k in drop & {"created", "updated"})
            for k in drop:
                row.pop(k)
            if isinstance(row.get("metadata"), memoryview):
                row["metadata"] = bytes(row["metadata"])
        return rows

    patients = {p.pk: (p.patient_id, p.issuer_of_patient_id) for p in Patient.objects.all()}
    studies = {s.pk: s.study_instance_uid for s in Study.objects.all()}
    series = {s.pk: s.series_instance_uid for s in Series.objects.all()}
    out = {"patients": sorted(values(Patient.objects.all(), {"id"}), key=lambda r: r["patient_id"])}
    out["studies"] = {r.pop("study_instance_uid"): {**r, "patient_id": patients[r["patient_id"]]}
                      for r in values(Study.objects.all(), {"id", "created", "updated"})}
    out["series"] = {r.pop("series_instance_uid"): {**r, "study_id": studies[r["study_id"]]}
                     for r in values(Series.objects.all(), {"id", "created"})}
    out["instances"] = {r.pop("sop_instance_uid"): {**r, "series_id": series[r["series_id"]]}
                        for r in values(Instance.objects.all(), {"id", "created"})}
    return out


def wipe() -> None:
    Instance.objects.all().delete()
    Series.objects.all().delete()
    Study.objects.all().delete()
    Patient.objects.all().delete()


@pytest.mark.django_db
def test_plain_sql_writes_the_rows_the_orm_wrote(slices):
    batches = scenario(slices)
    expected_outcomes = run(batches, orm_index_batch)
    expected = snapshot()
    wipe()
    assert run(batches, index_batch) == expected_outcomes
    assert snapshot() == expected
    assert expected_outcomes == ["ok", "ok", "DicomError", "IntegrityError", "ok", "ok", "ok"]
    study = Study.objects.get(study_instance_uid=batches[0][0].parsed.study_instance_uid)
    assert (study.modalities_in_study, study.number_of_study_related_series,
            study.number_of_study_related_instances) == ("\\CT\\SR\\MR\\", 4, 9)
    assert Patient.objects.get(patient_id="OTHER-1").patient_name == "Roe^Rick"
    held = held_instances("default", [batches[0][0].parsed.sop_instance_uid, "1.2.3"])
    assert held == {batches[0][0].parsed.sop_instance_uid: ("", batches[0][0].key)}


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_of_one_new_study_keep_every_count(slices):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite's IMMEDIATE transactions run writers one at a time; the race needs PostgreSQL")
    study, workers, per = generate_uid(), 6, 3
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def store(n: int) -> None:
        try:
            series = generate_uid()
            batch = items([variant(slices[0], study=study, series=series, modality="CT" if n % 2 else "SR")
                           for _ in range(per)])
            barrier.wait()
            with transaction.atomic():
                index_batch(batch)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=store, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    row = Study.objects.get(study_instance_uid=study)
    assert (row.number_of_study_related_series, row.number_of_study_related_instances) == (workers, workers * per)
    assert sorted(row.modalities) == ["CT", "SR"]
    assert Patient.objects.filter(patient_id=slices[0].patient["patient_id"]).count() == 1
    assert Instance.objects.filter(series__study=row).count() == workers * per
    assert all(s.number_of_series_related_instances == per for s in row.series.all())


@pytest.mark.django_db
def test_a_batch_of_many_patients_and_series(slices):
    """More patients than one OR list and more series than one IN list take (import, a large STOW request)."""
    study = generate_uid()
    batch = items([variant(slices[n % 3], study=study, series=generate_uid(), patient={"patient_id": f"P-{n // 2}"})
                   for n in range(2400)])
    with transaction.atomic():
        index_batch(batch)
    row = Study.objects.get(study_instance_uid=study)
    assert (row.number_of_study_related_series, row.number_of_study_related_instances) == (2400, 2400)
    assert Patient.objects.filter(patient_id__startswith="P-").count() == 1200
    assert row.modalities == ["CT"]
