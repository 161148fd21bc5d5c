"""Who may call: session login, HTTP Basic, Bearer tokens, and the 401s everyone else gets."""
from __future__ import annotations

import re

import requests


def test_api_requires_credentials(live_server_proc):
    r = requests.get(f"{live_server_proc.url}/api/accounts/me/", timeout=10)
    assert r.status_code == 401
    assert "Basic" in r.headers.get("WWW-Authenticate", "")


def test_dicomweb_requires_credentials(live_server_proc):
    r = requests.get(f"{live_server_proc.dicomweb}/studies", timeout=10)
    assert r.status_code == 401
    assert r.json()["detail"]


def test_basic_auth_reports_roles_and_capabilities(live_server_proc):
    r = live_server_proc.session("radiologist").get(f"{live_server_proc.url}/api/accounts/me/", timeout=10)
    assert r.status_code == 200
    body = r.json()
    assert body["username"] == "rad"
    assert body["roles"] == ["radiologist"]
    assert "view_all_studies" in body["capabilities"] and "delete" not in body["capabilities"]


def test_wrong_password_is_refused_even_after_a_good_one(live_server_proc):
    url = f"{live_server_proc.url}/api/accounts/me/"
    assert requests.get(url, auth=("rad", "rad-pass-123"), timeout=10).status_code == 200
    assert requests.get(url, auth=("rad", "wrong-password"), timeout=10).status_code == 401


def test_bearer_token_works_and_revocation_is_immediate(live_server_proc):
    out = live_server_proc.manage("create_user", "tokenuser", "--role", "resident", "--password", "tok-pass-123",
                                  "--token").stdout
    token = re.search(r"Token: (\w+)", out).group(1)
    url = f"{live_server_proc.url}/api/accounts/me/"
    r = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200 and r.json()["roles"] == ["resident"]
    live_server_proc.manage("shell", "-c", "from rest_framework.authtoken.models import Token; Token.objects.all().delete()")
    # deleted in another process: the server must not keep honouring it
    r = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 401


def test_session_login_through_the_form(live_server_proc):
    s = requests.Session()
    page = s.get(f"{live_server_proc.url}/accounts/login/", timeout=10)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    r = s.post(f"{live_server_proc.url}/accounts/login/", data={
        "username": "rad", "password": "rad-pass-123", "csrfmiddlewaretoken": csrf, "next": "/api/accounts/me/",
    }, headers={"Referer": f"{live_server_proc.url}/accounts/login/"}, timeout=10)
    assert r.status_code == 200 and r.json()["username"] == "rad"
