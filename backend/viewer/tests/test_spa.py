"""The SPA pages and their assets."""
from __future__ import annotations

import gzip
import secrets

import pytest
from django.contrib.auth.models import User

PASSWORD = secrets.token_urlsafe(12)  # random per run: no password in the repo


@pytest.fixture
def dist(tmp_path, settings):
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text('<!doctype html><script type="module" src="/assets/index-abc.js"></script>')
    (tmp_path / "assets" / "index-abc.js").write_text("console.log('x');" * 100)
    (tmp_path / "assets" / "codec-1.wasm").write_bytes(b"\0asm" + b"\1" * 100)
    settings.FRONTEND_DIST = tmp_path
    return tmp_path


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/viewer/1.2.840.113619.2.55.3"])
def test_pages_need_login(client, dist, path):
    r = client.get(path)
    assert r.status_code == 302
    assert r["Location"].startswith("/accounts/login/?next=")


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/viewer/1.2.840.113619.2.55.3", "/viewer/1.2.3/"])
def test_pages_serve_index(client, dist, path):
    client.force_login(User.objects.create_user("u", password=PASSWORD))
    r = client.get(path)
    assert r.status_code == 200
    assert b"/assets/index-abc.js" in r.content
    assert r["Cache-Control"] == "no-cache"
    assert "csrftoken" in r.cookies


@pytest.mark.django_db
def test_viewer_path_rejects_non_uid(client, dist):
    client.force_login(User.objects.create_user("u", password=PASSWORD))
    assert client.get("/viewer/<script>").status_code == 404


def test_assets_types_and_caching(client, dist):
    r = client.get("/assets/index-abc.js", HTTP_ACCEPT_ENCODING="gzip, br")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/javascript")
    assert r["Content-Encoding"] == "gzip"
    assert "immutable" in r["Cache-Control"] and "max-age=31536000" in r["Cache-Control"]
    assert gzip.decompress(r.content).startswith(b"console.log")
    r = client.get("/assets/codec-1.wasm")
    assert r["Content-Type"] == "application/wasm"
    assert b"".join(r.streaming_content).startswith(b"\0asm")


def test_assets_no_traversal(client, dist):
    (dist / "secret.txt").write_text("no")
    assert client.get("/assets/../secret.txt").status_code == 404
    assert client.get("/assets/missing.js").status_code == 404


@pytest.mark.django_db
def test_missing_build_says_how_to_fix(client, settings, tmp_path):
    settings.FRONTEND_DIST = tmp_path / "nope"
    client.force_login(User.objects.create_user("u", password=PASSWORD))
    r = client.get("/")
    assert r.status_code == 503
    assert b"npm ci && npm run build" in r.content
