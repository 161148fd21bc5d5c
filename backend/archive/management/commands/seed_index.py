"""Bulk-insert synthetic index rows (patients, studies, series, instances) so QIDO can be measured at scale.

No files are written: the rows exist only in the index, so searches work and WADO of them does not. Seeded
patients carry the issuer ``LIGHTBOX-SEED``; ``--clear`` removes them (and their studies) again.

    manage.py seed_index --studies 10000 [--series 2] [--instances 3] [--seed 1]
"""
from __future__ import annotations

import datetime as dt
import random
import time

import orjson
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError, connection, transaction

from archive.dicom.names import fuzzy_key, name_search_key
from archive.models import Instance, Patient, Series, Study

SEED_ISSUER = "LIGHTBOX-SEED"
BATCH = 2000
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MODALITIES = ("CT", "CT", "MR", "CR", "DX", "US", "MG", "PT", "SR")
SURNAMES = (
    "SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ", "MARTINEZ",
    "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON", "THOMAS", "TAYLOR", "MOORE", "JACKSON", "MARTIN",
    "LEE", "PEREZ", "THOMPSON", "WHITE", "HARRIS", "SANCHEZ", "CLARK", "RAMIREZ", "LEWIS", "ROBINSON",
    "WALKER", "YOUNG", "ALLEN", "KING", "WRIGHT", "SCOTT", "TORRES", "NGUYEN", "HILL", "FLORES",
    "SMYTH", "SCHMIDT", "MULLER", "DUBOIS", "ROSSI", "SILVA", "KOWALSKI", "NOVAK", "JANSEN", "MEYER",
)
GIVEN = (
    "JAMES", "MARY", "ROBERT", "PATRICIA", "JOHN", "JENNIFER", "MICHAEL", "LINDA", "DAVID", "ELIZABETH",
    "WILLIAM", "BARBARA", "RICHARD", "SUSAN", "JOSEPH", "JESSICA", "THOMAS", "SARAH", "CHARLES", "KAREN",
    "JANE", "JAYNE", "ANNA", "ANNE", "PAUL", "PAOLO", "MARIA", "MARIE", "PETER", "PIETER",
)
DESCRIPTIONS = ("CT CHEST W/O CONTRAST", "MR BRAIN", "CHEST PA AND LATERAL", "CT ABDOMEN PELVIS", "US ABDOMEN",
                "MAMMO SCREENING", "PET/CT WHOLE BODY", "XR KNEE 3 VIEWS")


def _uid(rng: random.Random) -> str:
    return f"2.25.{rng.getrandbits(126)}"


def _pn(value: str) -> list:
    return [{"Alphabetic": value}]


class Command(BaseCommand):
    help = "Insert N synthetic studies into the index (no files) to measure searches at scale."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--studies", type=int, default=0, help="number of studies to add")
        parser.add_argument("--series", type=int, default=2, help="series per study")
        parser.add_argument("--instances", type=int, default=3, help="instances per series")
        parser.add_argument("--patients", type=int, default=0, help="distinct patients (default: 2/3 of studies)")
        parser.add_argument("--seed", type=int, default=None, help="random seed, for repeatable data")
        parser.add_argument("--clear", action="store_true", help="first delete every seeded patient and study")

    def handle(self, *args, **options) -> None:
        if options["clear"]:
            studies = Study.objects.filter(patient__issuer_of_patient_id=SEED_ISSUER)
            deleted, _ = studies.delete()
            Patient.objects.filter(issuer_of_patient_id=SEED_ISSUER).delete()
            self.stdout.write(f"removed {deleted} seeded rows")
        count = options["studies"]
        if count <= 0:
            if not options["clear"]:
                raise CommandError("Give --studies N (N > 0), or --clear.")
            return
        if options["series"] < 1 or options["instances"] < 1:
            raise CommandError("--series and --instances must be at least 1.")
        started = time.perf_counter()
        rng = random.Random(options["seed"])
        try:
            with transaction.atomic():
                self._seed(rng, count, options["series"], options["instances"], options["patients"])
        except IntegrityError as exc:
            raise CommandError(f"Rows collide with rows already seeded ({exc}); use another --seed or --clear.") from exc
        if connection.vendor == "postgresql":  # a bulk load: fresh planner statistics, not autovacuum's in a minute
            with connection.cursor() as cursor:
                for model in (Patient, Study, Series, Instance):
                    cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
        self.stdout.write(f"seeded {count} studies in {time.perf_counter() - started:.1f} s")

    def _seed(self, rng: random.Random, count: int, per_study: int, per_series: int, patients: int) -> None:
        patients = patients or max(1, count * 2 // 3)
        salt = rng.getrandbits(24)
        patient_rows = []
        for n in range(patients):
            name = f"{rng.choice(SURNAMES)}^{rng.choice(GIVEN)}"
            patient_rows.append(Patient(
                patient_id=f"SEED{salt:06X}-{n:07d}", issuer_of_patient_id=SEED_ISSUER, patient_name=name,
                patient_name_search=name_search_key(name), patient_name_fuzzy=fuzzy_key(name),
                patient_birth_date=f"{rng.randint(1930, 2020)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}",
                patient_sex=rng.choice("MFO"),
            ))
        Patient.objects.bulk_create(patient_rows, batch_size=BATCH)
        first_day = dt.date(2015, 1, 1).toordinal()
        for start in range(0, count, BATCH // per_study or 1):
            self._seed_studies(rng, patient_rows, range(start, min(count, start + (BATCH // per_study or 1))),
                               salt, first_day, per_study, per_series)

    def _seed_studies(self, rng, patient_rows, numbers, salt, first_day, per_study, per_series) -> None:
        studies, series_rows, instance_rows = [], [], []
        plans = []
        for n in numbers:
            patient = rng.choice(patient_rows)
            modalities = [rng.choice(MODALITIES) for _ in range(per_study)]
            study = Study(
                study_instance_uid=_uid(rng), patient=patient,
                study_date=dt.date.fromordinal(first_day + rng.randint(0, 4000)),
                study_time=f"{rng.randint(7, 19):02d}{rng.randint(0, 59):02d}{rng.randint(0, 59):02d}.000000",
                accession_number=f"A{salt:06X}{n:08d}", referring_physician_name="REFERRER^ROSE",
                study_id=str(n % 10000), study_description=rng.choice(DESCRIPTIONS),
                modalities_in_study="\\" + "".join(f"{m}\\" for m in dict.fromkeys(modalities)),
                number_of_study_related_series=per_study, number_of_study_related_instances=per_study * per_series,
            )
            studies.append(study)
            plans.append(modalities)
        Study.objects.bulk_create(studies)
        for study, modalities in zip(studies, plans, strict=True):
            for number, modality in enumerate(modalities, start=1):
                series_rows.append(Series(
                    series_instance_uid=_uid(rng), study=study, modality=modality, series_number=number,
                    series_description=f"{modality} series {number}", body_part_examined="CHEST",
                    number_of_series_related_instances=per_series,
                ))
        Series.objects.bulk_create(series_rows, batch_size=BATCH)
        for series in series_rows:
            study = series.study
            patient = study.patient
            for number in range(1, per_series + 1):
                sop_uid = _uid(rng)
                metadata = {
                    "00080016": {"vr": "UI", "Value": [CT_IMAGE]},
                    "00080018": {"vr": "UI", "Value": [sop_uid]},
                    "00080020": {"vr": "DA", "Value": [study.study_date.strftime("%Y%m%d")]},
                    "00080060": {"vr": "CS", "Value": [series.modality]},
                    "00080070": {"vr": "LO", "Value": ["LIGHTBOX SEED"]},
                    "00081030": {"vr": "LO", "Value": [study.study_description]},
                    "00100010": {"vr": "PN", "Value": _pn(patient.patient_name)},
                    "00100020": {"vr": "LO", "Value": [patient.patient_id]},
                    "00101010": {"vr": "AS", "Value": ["045Y"]},
                    "0020000D": {"vr": "UI", "Value": [study.study_instance_uid]},
                    "0020000E": {"vr": "UI", "Value": [series.series_instance_uid]},
                    "00200013": {"vr": "IS", "Value": [number]},
                    "00280010": {"vr": "US", "Value": [512]},
                    "00280011": {"vr": "US", "Value": [512]},
                    "00280100": {"vr": "US", "Value": [16]},
                    "00180050": {"vr": "DS", "Value": [1.25]},
                }
                instance_rows.append(Instance(
                    sop_instance_uid=sop_uid, series=series, sop_class_uid=CT_IMAGE, instance_number=number,
                    rows=512, columns=512, bits_allocated=16, number_of_frames=1,
                    transfer_syntax_uid="1.2.840.10008.1.2.1", photometric_interpretation="MONOCHROME2",
                    storage_key=f"seed/{sop_uid}", file_size=0, sha256="0" * 64,
                    metadata=orjson.dumps(metadata, option=orjson.OPT_SORT_KEYS), frame_index=[],
                ))
        Instance.objects.bulk_create(instance_rows, batch_size=BATCH)
