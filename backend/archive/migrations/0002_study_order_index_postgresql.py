"""An index in the exact order of every study search (newest first, undated studies last), on PostgreSQL.

The searches sort by ``study_date DESC NULLS LAST, study_time DESC, id DESC``. SQLite walks ``study_date_time``
backwards for that (NULL is its smallest value, the row id breaks ties), but PostgreSQL cannot: a backward scan
of an ascending index puts NULLs first, so the study list sorted every row (62 ms at 100,000 studies against 3 ms
with this index; docs/PERFORMANCE.md). SQLite does not accept NULLS LAST in an index, hence SQL for PostgreSQL only.
Building it holds writes to the study table for a moment per ~100,000 studies: upgrade a large archive when quiet.
"""
from django.db import migrations

INDEX = "study_search_order"


def create(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON archive_study "
            "(study_date DESC NULLS LAST, study_time DESC, id DESC)"
        )


def drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("archive", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
