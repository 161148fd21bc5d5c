"""QIDO-RS against the live server, with the Python dicomweb-client and plain requests.

Every search is scoped to this module's patients (PatientID ``QIDOT-*``), so data stored by other test modules
in the same live server does not change the answers.
"""
from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import generate_uid

from tests.dicomgen import make_ct_series
from tests.livesrv import make_live_server

SCOPE = {"PatientID": "QIDOT-*"}


def _study(out: Path, *, name: str, pid: str, date: str, time: str, accession: str, description: str,
           series: list[str], slices: int = 3, extra: dict | None = None) -> dict:
    """A study of one CT-like series per entry of ``series`` (its modality), edited to the values asked for."""
    study_uid = generate_uid()
    info = {"study": study_uid, "series": [], "instances": {}, "files": []}
    for number, modality in enumerate(series, start=1):
        paths = make_ct_series(out / f"{pid}-{number}", slices=slices, size=16, patient_name=name, patient_id=pid,
                               study_uid=study_uid, study_date=date, accession=accession, description=description)
        for path in paths:
            ds = pydicom.dcmread(path)
            ds.Modality = modality
            ds.SeriesNumber = number
            ds.StudyTime = time
            for keyword, value in (extra or {}).items():
                setattr(ds, keyword, value)
            ds.save_as(path, enforce_file_format=True)
        info["series"].append(str(ds.SeriesInstanceUID))
        info["instances"][str(ds.SeriesInstanceUID)] = [str(pydicom.dcmread(p).SOPInstanceUID) for p in paths]
        info["files"] += [str(p) for p in paths]
    return info


def _shell(server, code: str) -> str:
    """Run Python in the server's environment; the last line it prints."""
    lines = server.manage("shell", "-c", code).stdout.strip().splitlines()
    return lines[-1] if lines else ""


@pytest.fixture(scope="module")
def studies(live_server_proc, tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("qido")
    data = {
        "A": _study(out, name="Quibbleton^Jane", pid="QIDOT-A", date="20240115", time="101500", accession="ACC-QA1",
                    description="CT chest", series=["CT", "SR"], extra={"PatientAge": "054Y",
                                                                        "InstitutionName": "Lightbox General"}),
        "B": _study(out, name="Smithers^John", pid="QIDOT-B", date="20240301", time="143000", accession="ACC_QB%1",
                    description="MR brain", series=["MR"]),
        "C": _study(out, name="Smythers^Jon", pid="QIDOT-C", date="20231120", time="080000", accession="ACCXQB91",
                    description="CT abdomen", series=["CT"]),
        "D": _study(out, name="Oakley^Ann", pid="QIDOT-D", date="20231231", time="235959", accession="",
                    description="", series=["CR"]),
    }
    files = [f for study in data.values() for f in study["files"]]
    stored = _shell(live_server_proc, (
        "import json; from archive.ingest import store_file\n"
        f"outcomes = [store_file(p) for p in json.loads({json.dumps(json.dumps(files))})]\n"
        "print(json.dumps([[o.status, o.reason] for o in outcomes if not o.ok]))"
    ))
    assert json.loads(stored) == []
    return data


@pytest.fixture(scope="module")
def client(live_server_proc) -> DICOMwebClient:
    return DICOMwebClient(url=live_server_proc.dicomweb, session=live_server_proc.session())


def _value(dataset: dict, tag: str):
    values = dataset.get(tag, {}).get("Value")
    return values[0] if values else None


def _uids(results: list[dict], tag: str = "0020000D") -> list[str]:
    return [_value(r, tag) for r in results]


def _get(server, path: str, role: str = "radiologist", **params) -> requests.Response:
    return server.session(role).get(f"{server.dicomweb}{path}", params=params, timeout=30)


# --- the six resources -------------------------------------------------------------------------------------


def test_search_studies_returns_default_attributes(client, studies, live_server_proc):
    results = client.search_for_studies(search_filters={"PatientID": "QIDOT-A"})
    assert len(results) == 1
    study = results[0]
    assert _value(study, "0020000D") == studies["A"]["study"]
    assert study["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Quibbleton^Jane"}]}
    assert _value(study, "00080020") == "20240115"
    assert _value(study, "00080030") == "101500"
    assert _value(study, "00080050") == "ACC-QA1"
    assert study["00080061"]["Value"] == ["CT", "SR"]
    assert _value(study, "00201206") == 2
    assert _value(study, "00201208") == 6
    assert _value(study, "00080056") == "ONLINE"
    # dicomweb-client sends "Host: 127.0.0.1" without the port, and the URL is built from the Host header
    assert _value(study, "00081190") == f"http://127.0.0.1/dicomweb/studies/{studies['A']['study']}"


def test_retrieve_url_is_absolute_from_the_host_header(live_server_proc, studies):
    (study,) = _get(live_server_proc, "/studies", PatientID="QIDOT-A").json()
    assert _value(study, "00081190") == f"{live_server_proc.dicomweb}/studies/{studies['A']['study']}"


def test_search_series_of_a_study_sorted_by_series_number(client, studies, live_server_proc):
    a = studies["A"]
    results = client.search_for_series(study_instance_uid=a["study"])
    assert _uids(results, "0020000E") == a["series"]
    assert [_value(r, "00080060") for r in results] == ["CT", "SR"]
    assert [_value(r, "00200011") for r in results] == [1, 2]
    assert all(_value(r, "00201209") == 3 for r in results)
    assert all(_value(r, "0020000D") == a["study"] for r in results)
    assert _value(results[1], "00081190").endswith(f"/dicomweb/studies/{a['study']}/series/{a['series'][1]}")


def test_search_all_series_includes_study_attributes(client, studies):
    results = client.search_for_series(search_filters={**SCOPE, "Modality": "MR"})
    assert len(results) == 1
    assert _value(results[0], "0020000E") == studies["B"]["series"][0]
    assert _value(results[0], "00100020") == "QIDOT-B"  # a study-level attribute on an all-series search
    assert _value(results[0], "00080020") == "20240301"


def test_search_instances_of_a_series(client, studies, live_server_proc):
    a = studies["A"]
    series = a["series"][0]
    results = client.search_for_instances(study_instance_uid=a["study"], series_instance_uid=series)
    assert _uids(results, "00080018") == a["instances"][series]
    assert [_value(r, "00200013") for r in results] == [1, 2, 3]
    first = results[0]
    assert _value(first, "00080016") == "1.2.840.10008.5.1.4.1.1.2"
    assert (_value(first, "00280010"), _value(first, "00280011"), _value(first, "00280100")) == (16, 16, 16)
    assert _value(first, "00280008") == 1
    assert _value(first, "0020000E") == series
    assert _value(first, "00081190").endswith(
        f"/dicomweb/studies/{a['study']}/series/{series}/instances/{a['instances'][series][0]}"
    )


def test_search_instances_of_a_study(client, studies):
    a = studies["A"]
    results = client.search_for_instances(study_instance_uid=a["study"])
    expected = a["instances"][a["series"][0]] + a["instances"][a["series"][1]]
    assert _uids(results, "00080018") == expected
    assert _value(results[-1], "00080060") == "SR"  # series attributes come along


def test_search_all_instances(client, studies):
    results = client.search_for_instances(search_filters={**SCOPE, "Modality": "CT"}, limit=100)
    assert {_value(r, "0020000D") for r in results} == {studies["A"]["study"], studies["C"]["study"]}
    assert len(results) == 6
    assert all(_value(r, "00100020") in {"QIDOT-A", "QIDOT-C"} for r in results)


# --- matching ------------------------------------------------------------------------------------------------


def _study_search(server, **params) -> list[str]:
    response = _get(server, "/studies", **{**SCOPE, **params})
    assert response.status_code == 200, response.text
    return _uids(response.json())


def test_studies_are_sorted_newest_first(live_server_proc, studies):
    assert _study_search(live_server_proc) == [studies[k]["study"] for k in "BADC"]


def test_match_by_tag_as_well_as_keyword(live_server_proc, studies):
    assert _study_search(live_server_proc, **{"00080050": "ACC-QA1"}) == [studies["A"]["study"]]


def test_uid_lists_by_comma_and_backslash(live_server_proc, studies):
    a, c = studies["A"]["study"], studies["C"]["study"]
    assert _study_search(live_server_proc, StudyInstanceUID=f"{a},{c}") == [a, c]
    assert _study_search(live_server_proc, StudyInstanceUID=f"{c}\\{a}") == [a, c]


def test_wildcards_and_literal_percent_and_underscore(live_server_proc, studies):
    b, c = studies["B"]["study"], studies["C"]["study"]
    assert _study_search(live_server_proc, AccessionNumber="ACC?QB*") == [b, c]
    assert _study_search(live_server_proc, AccessionNumber="ACC_QB*") == [b]  # "_" is not a wild card
    assert _study_search(live_server_proc, AccessionNumber="*%1") == [b]  # nor is "%"
    assert _study_search(live_server_proc, StudyDescription="CT*") == [studies["A"]["study"], c]
    assert _study_search(live_server_proc, StudyDescription="ct*") == []  # case-sensitive outside PN


def test_patient_name_is_case_insensitive(live_server_proc, studies):
    a = studies["A"]["study"]
    assert _study_search(live_server_proc, PatientName="quibbleton^jane") == [a]
    assert _study_search(live_server_proc, PatientName="QUIBB*") == [a]
    assert _study_search(live_server_proc, PatientName="*^jan?") == [a]
    assert _study_search(live_server_proc, PatientName="Quibbleton") == []  # literal: the whole name


def test_fuzzy_matching_by_prefix_and_soundex(client, studies):
    found = client.search_for_studies(search_filters={**SCOPE, "PatientName": "Smithers"}, fuzzymatching=True)
    assert _uids(found) == [studies["B"]["study"], studies["C"]["study"]]  # Smythers sounds the same
    found = client.search_for_studies(search_filters={**SCOPE, "PatientName": "jane quib"}, fuzzymatching=True)
    assert _uids(found) == [studies["A"]["study"]]  # word order free, prefixes, any case


def test_date_ranges(live_server_proc, studies):
    a, b, c, d = (studies[k]["study"] for k in "ABCD")
    assert _study_search(live_server_proc, StudyDate="20240115") == [a]
    assert _study_search(live_server_proc, StudyDate="20231201-20240131") == [a, d]
    assert _study_search(live_server_proc, StudyDate="-20231231") == [d, c]
    assert _study_search(live_server_proc, StudyDate="20240201-") == [b]


def test_time_ranges(live_server_proc, studies):
    a, b, c = (studies[k]["study"] for k in "ABC")
    assert _study_search(live_server_proc, StudyTime="1000-1100") == [a]
    assert _study_search(live_server_proc, StudyTime="14") == [b]  # the whole hour
    assert _study_search(live_server_proc, StudyTime="-0900") == [c]


def test_modalities_in_study(live_server_proc, studies):
    assert _study_search(live_server_proc, ModalitiesInStudy="SR") == [studies["A"]["study"]]
    assert _study_search(live_server_proc, ModalitiesInStudy="MR\\CR") == [studies["B"]["study"], studies["D"]["study"]]


def test_empty_value_is_universal_and_empty_attributes_have_no_value(live_server_proc, studies):
    assert len(_study_search(live_server_proc, AccessionNumber="")) == 4
    assert len(_study_search(live_server_proc, PatientName="", PatientBirthDate="*")) == 4
    response = _get(live_server_proc, "/studies", PatientID="QIDOT-D")
    (study,) = response.json()
    assert study["00080050"] == {"vr": "SH"}  # PS3.18 F.2.5: no "Value" key


def test_empty_value_matching(live_server_proc, studies):
    a, c, d = (studies[k]["study"] for k in "ACD")
    assert _study_search(live_server_proc, StudyDescription="CT*") == [a, c]
    assert _study_search(live_server_proc, StudyDescription="CT*", emptyvaluematching="true") == [a, d, c]


def test_referring_physician_and_birth_date(live_server_proc, studies):
    everyone = [studies[k]["study"] for k in "BADC"]
    assert _study_search(live_server_proc, ReferringPhysicianName="ref^doctor") == everyone
    assert _study_search(live_server_proc, ReferringPhysicianName="doc", fuzzymatching="true") == everyone
    assert _study_search(live_server_proc, PatientBirthDate="19691231-19700101") == everyone
    assert _study_search(live_server_proc, PatientBirthDate="19710101-") == []


def test_lists_and_wildcards_at_lower_levels(live_server_proc, studies):
    a = studies["A"]
    response = _get(live_server_proc, f"/studies/{a['study']}/instances", InstanceNumber="1,3")
    numbers = [(_value(i, "0020000E"), _value(i, "00200013")) for i in response.json()]
    assert numbers == [(a["series"][0], 1), (a["series"][0], 3), (a["series"][1], 1), (a["series"][1], 3)]
    series = _get(live_server_proc, "/series", Modality="C?\\MR", **SCOPE).json()
    assert [_value(s, "00080060") for s in series] == ["MR", "CT", "CR", "CT"]  # newest study first


# --- includefield, paging, media types -------------------------------------------------------------------------


def test_includefield_named_attributes_come_from_the_first_instance(client, studies):
    (study,) = client.search_for_studies(search_filters={"PatientID": "QIDOT-A"}, fields=["PixelSpacing", "00101010"])
    assert study["00280030"]["Value"] == [0.7, 0.7]
    assert _value(study, "00101010") == "054Y"


def test_includefield_all_per_level(client, studies):
    a = studies["A"]
    (study,) = client.search_for_studies(search_filters={"PatientID": "QIDOT-A"}, fields=["all"])
    assert _value(study, "00101010") == "054Y"  # patient-level attribute of the metadata
    assert _value(study, "00081030") == "CT chest"
    assert "00080080" not in study  # InstitutionName is a series-level attribute
    series = client.search_for_series(study_instance_uid=a["study"], fields=["all"])
    assert _value(series[0], "00080080") == "Lightbox General"
    assert _value(series[0], "00180015") == "CHEST"
    instances = client.search_for_instances(
        study_instance_uid=a["study"], series_instance_uid=a["series"][0], fields=["all"]
    )
    assert _value(instances[0], "00281050") == 40  # WindowCenter: any instance attribute
    assert "7FE00010" not in instances[0]  # never bulk data
    assert list(instances[0]) == sorted(instances[0]) and list(study) == sorted(study)


def test_limit_offset_and_warning_header(live_server_proc, studies):
    order = [studies[k]["study"] for k in "BADC"]
    first = _get(live_server_proc, "/studies", limit=2, **SCOPE)
    assert _uids(first.json()) == order[:2]
    assert first.headers["Warning"].startswith("299 ")
    assert "Additional results can be requested" in first.headers["Warning"]
    last = _get(live_server_proc, "/studies", limit=2, offset=2, **SCOPE)
    assert _uids(last.json()) == order[2:]
    assert "Warning" not in last.headers
    everything = _get(live_server_proc, "/studies", limit=0, **SCOPE)  # 0: the server's maximum
    assert len(everything.json()) == 4 and "Warning" not in everything.headers
    beyond = _get(live_server_proc, "/studies", offset=10, **SCOPE)
    assert beyond.status_code == 200 and beyond.json() == []


def test_dicomweb_client_pages_through_everything(client, studies):
    results = client.search_for_studies(search_filters=SCOPE, limit=1, get_remaining=True)
    assert len(results) == 4


def test_no_match_is_200_with_an_empty_array(live_server_proc, studies):
    response = _get(live_server_proc, "/studies", PatientID="QIDOT-NOBODY")
    assert response.status_code == 200
    assert response.json() == []
    assert response.headers["Content-Type"] == "application/dicom+json"


def test_media_types(live_server_proc, studies):
    url = f"{live_server_proc.dicomweb}/studies"
    session = live_server_proc.session()
    as_json = session.get(url, params=SCOPE, headers={"Accept": "application/json"})
    assert as_json.status_code == 200 and as_json.headers["Content-Type"] == "application/json"
    by_parameter = session.get(url, params={**SCOPE, "accept": "application/json"},
                               headers={"Accept": "application/dicom+xml"})
    assert by_parameter.status_code == 200 and by_parameter.headers["Content-Type"] == "application/json"
    for accept in ("application/xml", 'multipart/related; type="application/dicom+xml"'):
        refused = session.get(url, params=SCOPE, headers={"Accept": accept})
        assert refused.status_code == 406, accept
        assert "application/dicom+json" in refused.json()["error"]


# --- errors and access -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "reason"), [
    ({"NotAKeyword": "x"}, "NotAKeyword"),
    ({"StudyDate": "2024-01-01"}, "StudyDate"),
    ({"StudyDate": "20241301"}, "calendar"),
    ({"StudyDate": "20240201-20240101"}, "starts after"),
    ({"StudyTime": "2561"}, "StudyTime"),
    ({"limit": "ten"}, "limit"),
    ({"limit": "-1"}, "limit"),
    ({"offset": "1.5"}, "offset"),
    ({"StudyInstanceUID": "1.2.3,1.2.x"}, "not a valid UID"),
    ({"StudyInstanceUID": "1.2.*"}, "wild cards"),
    ({"includefield": "NoSuchAttribute"}, "includefield"),
    ({"Modality": "CT"}, "ModalitiesInStudy"),
    ({"WindowCenter": "40"}, "cannot be matched"),
    ({"fuzzymatching": "maybe"}, "fuzzymatching"),
    ({"PatientID": ["A", "B"]}, "more than once"),
])
def test_malformed_queries_are_400_with_a_reason(live_server_proc, params, reason):
    response = _get(live_server_proc, "/studies", **params)
    assert response.status_code == 400
    assert reason in response.json()["error"]


@pytest.mark.parametrize(("path", "params", "reason"), [
    ("/series", {"SeriesNumber": "one"}, "integer"),
    ("/series", {"SeriesNumber": "99999999999999999999"}, "out of range"),
    ("/series", {"Modality": "C\x00T"}, "NUL"),
    ("/series", {"SOPInstanceUID": "1.2.3"}, "series level"),
    ("/instances", {"InstanceNumber": "1", "includefield": "00280010,Bogus"}, "Bogus"),
    ("/instances", {"RequestAttributesSequence.ScheduledProcedureStepID": "1"}, "sequence matching"),
])
def test_malformed_queries_at_lower_levels(live_server_proc, path, params, reason):
    response = _get(live_server_proc, path, **params)
    assert response.status_code == 400
    assert reason in response.json()["error"]


def test_credentials_are_required(live_server_proc):
    for path in ("/studies", "/series", "/instances"):
        assert requests.get(f"{live_server_proc.dicomweb}{path}", timeout=10).status_code == 401


def test_resident_sees_only_granted_studies(live_server_proc, studies):
    a, b = studies["A"], studies["B"]
    assert _get(live_server_proc, "/studies", role="resident", **SCOPE).json() == []
    assert _get(live_server_proc, "/instances", role="resident", **SCOPE).json() == []
    grant = (
        "from django.contrib.auth.models import User; from accounts.models import StudyGrant\n"
        f"StudyGrant.objects.create(user=User.objects.get(username='resident'), study_instance_uid='{a['study']}')"
    )
    _shell(live_server_proc, grant)
    try:
        assert _uids(_get(live_server_proc, "/studies", role="resident", **SCOPE).json()) == [a["study"]]
        series = _get(live_server_proc, "/series", role="resident", **SCOPE).json()
        assert set(_uids(series, "0020000E")) == set(a["series"])
        instances = _get(live_server_proc, "/instances", role="resident", **SCOPE).json()
        assert {_value(i, "0020000D") for i in instances} == {a["study"]} and len(instances) == 6
        assert _get(live_server_proc, f"/studies/{b['study']}/series", role="resident").status_code == 403
        assert _get(live_server_proc, f"/studies/{b['study']}/instances", role="resident").status_code == 403
    finally:
        _shell(live_server_proc, grant.replace(".create(", ".filter(") + ".delete()")


def test_every_search_is_audited_once(live_server_proc, studies):
    marker = "QIDOT-AUDIT-MARKER"
    for _ in range(2):
        assert _get(live_server_proc, "/studies", PatientID=marker).status_code == 200
    count = _shell(live_server_proc, (
        "from audit.models import AuditEvent\n"
        f"print(AuditEvent.objects.filter(action='qido.search', username='rad', "
        f"detail__query__match__PatientID='{marker}').count())"
    ))
    assert count == "2"


RAW_SQL_SEARCHES = [
    "", "limit=2", "limit=2&offset=1", "offset=3", "PatientID=QIDOT-*", "PatientID=QIDOT-A", "PatientID=QIDOT-?",
    "PatientID=QIDOT-A\\QIDOT-C", "PatientID=nobody", "PatientName=SMI*", "PatientName=smithers^john",
    "PatientName=Smithers^John^^", "PatientName=*ers*", "PatientName=Quibbleton^Jane\\Oakley*",
    "PatientName=Smith&fuzzymatching=true", "PatientName=Jon&fuzzymatching=true", "PatientBirthDate=-20000101",
    "PatientSex=M,F", "StudyDate=20231120-20240301", "StudyDate=-20231231", "StudyDate=20240115",
    "StudyDate=20240101-&PatientID=QIDOT-*", "StudyTime=08-1500", "StudyTime=2359", "AccessionNumber=ACC_QB%1",
    "AccessionNumber=ACC?QB*", "AccessionNumber=&emptyvaluematching=true", "AccessionNumber=ACC-QA1&emptyvaluematching=true",
    "ModalitiesInStudy=SR", "ModalitiesInStudy=CT,MR", "ModalitiesInStudy=C*", "ModalitiesInStudy=MR\\CR&PatientID=QIDOT-*",
    "StudyDescription=CT*", "StudyID=*", "ReferringPhysicianName=*", "StudyInstanceUID=1.2.3,1.2.4",
    "StudyInstanceUID=1.2.826.0.1.3680043.8.498.404", "PatientID=QIDOT-*&StudyDate=20231101-20231231&limit=1",
    "includefield=IssuerOfPatientID&PatientID=QIDOT-*", "PatientName=*&StudyDate=*",
]


def test_raw_study_search_gives_what_the_orm_gives(live_server_proc, studies):
    """archive.qido.rawsql answers common study searches in plain SQL: the same rows, order and page as the
    ORM path, on this server's database (SQLite, or PostgreSQL in production mode)."""
    code = (
        "import json\n"
        "from django.contrib.auth import get_user_model\n"
        "from django.http import QueryDict\n"
        "from archive.qido import rawsql\n"
        "from archive.qido.attributes import Level\n"
        "from archive.qido.params import parse_query\n"
        "from archive.qido.search import Resource, search\n"
        "user = get_user_model().objects.get(username='rad')\n"
        "taken, differ = 0, []\n"
        "real = rawsql.study_rows\n"
        "def spy(*args):\n"
        "    global taken\n"
        "    rows = real(*args)\n"
        "    taken += rows is not None\n"
        "    return rows\n"
        f"for qs in {RAW_SQL_SEARCHES!r}:\n"
        "    query = parse_query(QueryDict(qs), Level.STUDY)\n"
        "    rawsql.study_rows = spy\n"
        "    fast = search(Resource(Level.STUDY), query, user, 'http://x')\n"
        "    rawsql.study_rows = lambda *args: None\n"
        "    orm = search(Resource(Level.STUDY), query, user, 'http://x')\n"
        "    if (fast.results, fast.truncated) != (orm.results, orm.truncated) or not orm.results and 'QIDOT' in qs:\n"
        "        differ.append([qs, len(fast.results), len(orm.results)])\n"
        "print(json.dumps([taken, differ]))"
    )
    taken, differ = json.loads(_shell(live_server_proc, code))
    assert differ == []
    assert taken == len(RAW_SQL_SEARCHES)  # every one of them took the raw path


def test_seed_index_adds_and_clears_synthetic_studies(tmp_path):
    """The bench's data generator, on its own data folder (the shared live server is left alone)."""
    server = make_live_server(tmp_path)
    server.manage("migrate", "--noinput")
    server.manage("seed_index", "--studies", "5", "--series", "2", "--instances", "3", "--seed", "7")
    count = (
        "from archive.models import Instance, Series, Study\n"
        "s = Study.objects.first()\n"
        "print(Study.objects.count(), Series.objects.count(), Instance.objects.count(),"
        " s.number_of_study_related_instances, s.modalities_in_study.startswith('\\\\'))"
    )
    assert _shell(server, count).split() == ["5", "10", "30", "6", "True"]
    server.manage("seed_index", "--clear")
    assert _shell(server, "from archive.models import Study, Patient\n"
                          "print(Study.objects.count(), Patient.objects.count())").split() == ["0", "0"]
