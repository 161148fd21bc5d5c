"""The newest-first study list (every viewer's and worklist's first search) reads its order from an index, on
SQLite and on PostgreSQL, instead of sorting every study: what keeps it fast at 100,000 studies
(docs/PERFORMANCE.md). The plan is asked of the database for the very SQL the search sends."""
from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from archive.qido.views import search_studies


def _list_query() -> str:
    admin = get_user_model().objects.create_superuser("plan-admin", "plan@example.org", "plan-pass-123")
    request = RequestFactory().get("/dicomweb/studies", {"limit": "101"}, HTTP_ACCEPT="application/dicom+json",
                                   HTTP_HOST="127.0.0.1")
    request.user = request.lightbox_user = admin
    with CaptureQueriesContext(connection) as queries:
        response = search_studies(request)
    assert response.status_code == 200
    (sql,) = [q["sql"] for q in queries.captured_queries if "ORDER BY" in q["sql"] and "archive_study" in q["sql"]]
    return sql


@pytest.mark.django_db
def test_the_study_list_reads_its_order_from_an_index():
    call_command("seed_index", studies=3000, series=1, instances=1, seed=11, stdout=io.StringIO())
    sql = _list_query()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            plan = " | ".join(row[-1] for row in cursor.fetchall())
            assert "study_date_time" in plan and "TEMP B-TREE" not in plan, plan
        else:
            cursor.execute(f"EXPLAIN {sql}")
            plan = " | ".join(row[0] for row in cursor.fetchall())
            assert "study_search_order" in plan and "Sort" not in plan, plan
