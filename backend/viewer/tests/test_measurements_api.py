"""The measurements API: per user and study, upsert by annotation UID, access checks, audit."""
from __future__ import annotations

import secrets

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from accounts.models import StudyGrant
from audit.models import AuditEvent
from viewer.models import Measurement

STUDY = "1.2.826.0.1.3680043.8.498.1"
OTHER_STUDY = "1.2.826.0.1.3680043.8.498.2"
SERIES = "1.2.826.0.1.3680043.8.498.1.1"
SOP = "1.2.826.0.1.3680043.8.498.1.1.1"

PASSWORD = secrets.token_urlsafe(12)  # random per run: no password in the repo


def _user(name: str, role: str | None) -> User:
    user = User.objects.create_user(name, password=PASSWORD)
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def _client(user: User) -> APIClient:
    c = APIClient()
    c.force_authenticate(user)
    return c


def _length(uid: str = "a1b2c3d4-0001", **over) -> dict:
    body = {
        "uid": uid,
        "kind": "length",
        "series_instance_uid": SERIES,
        "sop_instance_uid": SOP,
        "frame_number": 1,
        "frame_of_reference_uid": "1.2.3",
        "points": [[0.0, 0.0, 10.0], [30.0, 40.0, 10.0]],
        "view_plane_normal": [0, 0, -1],
        "view_up": [0, -1, 0],
        "label": "",
        "stats": {"length": 50.0, "unit": "mm"},
    }
    body.update(over)
    return body


def url(study: str = STUDY, uid: str | None = None) -> str:
    base = f"/api/viewer/studies/{study}/measurements/"
    return f"{base}{uid}/" if uid else base


@pytest.fixture
def rad(db) -> User:
    return _user("rad1", "radiologist")


@pytest.mark.django_db
def test_put_creates_then_replaces_and_lists(rad):
    c = _client(rad)
    r = c.put(url(uid="a1b2c3d4-0001"), _length(), format="json")
    assert r.status_code == 201, r.content
    assert r.json()["stats"] == {"length": 50.0, "unit": "mm"}
    r = c.put(url(uid="a1b2c3d4-0001"), _length(stats={"length": 51.5, "unit": "mm"}), format="json")
    assert r.status_code == 200
    listed = c.get(url()).json()
    assert len(listed) == 1 and listed[0]["stats"]["length"] == 51.5
    assert listed[0]["points"] == [[0.0, 0.0, 10.0], [30.0, 40.0, 10.0]]
    assert AuditEvent.objects.filter(action="viewer.measurement.save", study_instance_uid=STUDY).count() == 2


@pytest.mark.django_db
def test_post_and_delete(rad):
    c = _client(rad)
    assert c.post(url(), _length("m-2", kind="probe", points=[[1, 2, 3]], stats={"value": -998.0, "unit": "HU"}), format="json").status_code == 201
    assert c.get(url(uid="m-2")).json()["kind"] == "probe"
    assert c.delete(url(uid="m-2")).status_code == 204
    assert c.delete(url(uid="m-2")).status_code == 404
    assert not Measurement.objects.exists()


@pytest.mark.django_db
def test_measurements_are_per_user(rad):
    other = _user("rad2", "radiologist")
    _client(rad).put(url(uid="mine"), _length("mine"), format="json")
    assert _client(other).get(url()).json() == []
    assert _client(other).get(url(uid="mine")).status_code == 404
    # The same UID for another user is another measurement.
    assert _client(other).put(url(uid="mine"), _length("mine"), format="json").status_code == 201
    assert Measurement.objects.count() == 2


@pytest.mark.django_db
def test_access_needs_a_grant_for_residents(db):
    resident = _user("res", "resident")
    c = _client(resident)
    assert c.get(url()).status_code == 403
    assert c.put(url(uid="x"), _length("x"), format="json").status_code == 403
    StudyGrant.objects.create(user=resident, study_instance_uid=STUDY)
    assert c.put(url(uid="x"), _length("x"), format="json").status_code == 201
    assert c.get(url(OTHER_STUDY)).status_code == 403


@pytest.mark.django_db
def test_anonymous_is_refused(db):
    assert APIClient().get(url()).status_code in (401, 403)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change, field",
    [
        ({"kind": "spline"}, "kind"),
        ({"points": [[0, 0, 0]]}, "points"),  # a length needs two
        ({"points": [[0, 0]]}, "points"),
        ({"points": [[0, 0, "x"], [1, 1, 1]]}, "points"),
        ({"sop_instance_uid": "not-a-uid"}, "sop_instance_uid"),
        ({"stats": {"length": 1, "evil": "<script>"}}, "stats"),
        ({"view_plane_normal": [0, 1]}, "view_plane_normal"),
    ],
)
def test_validation(rad, change, field):
    r = _client(rad).put(url(uid="v-1"), _length("v-1", **change), format="json")
    assert r.status_code == 400, r.content
    assert field in r.json() or field in str(r.json())


@pytest.mark.django_db
def test_uid_in_body_must_match_url(rad):
    r = _client(rad).put(url(uid="one"), _length("two"), format="json")
    assert r.status_code == 400


@pytest.mark.django_db
def test_session_auth_needs_csrf(rad):
    c = APIClient(enforce_csrf_checks=True)
    c.force_login(rad)
    assert c.put(url(uid="c-1"), _length("c-1"), format="json").status_code == 403
    c.get("/")  # the SPA page sets the csrftoken cookie
    token = c.cookies["csrftoken"].value
    r = c.put(url(uid="c-1"), _length("c-1"), format="json", HTTP_X_CSRFTOKEN=token)
    assert r.status_code == 201, r.content
