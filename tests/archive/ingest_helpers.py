"""Helpers shared by the ingest tests (STOW-RS, C-STORE, import, delete): bodies, index and store inspection."""
from __future__ import annotations

import json
import os
import sqlite3
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.livesrv import LiveServer, make_live_server


def multipart(parts: list[bytes], boundary: str = "lightbox-test-boundary", part_type: str | None = "application/dicom",
              ) -> tuple[bytes, str]:
    """A multipart/related body and its Content-Type, built by hand as a client would."""
    chunks = []
    for data in parts:
        headers = f"Content-Type: {part_type}\r\n" if part_type else ""
        chunks.append(f"--{boundary}\r\n{headers}\r\n".encode() + data + b"\r\n")
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    return body, f'multipart/related; type="application/dicom"; boundary={boundary}'


def stored_files(server: LiveServer) -> set[str]:
    """Every file in the store (the staging folder excluded)."""
    root = server.data_dir / "dicom"
    out = set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".staging"]
        out.update(str(Path(folder) / f) for f in files)
    return out


def staging_files(server: LiveServer) -> list[str]:
    staging = server.data_dir / "dicom" / ".staging"
    return sorted(os.listdir(staging)) if staging.exists() else []


def index_state(server: LiveServer, *, studies: list[str] = (), instances: list[str] = (),
                patients: list[str] = ()) -> dict:
    """What the index holds for some studies and SOP instances, read by a `manage.py shell` of the server."""
    code = textwrap.dedent(f"""
        import json
        from archive.models import Instance, Patient, Study
        from audit.models import AuditEvent
        out = {{"studies": {{}}, "instances": {{}}}}
        for uid in {list(studies)!r}:
            st = Study.objects.filter(study_instance_uid=uid).select_related("patient").first()
            if st is None:
                out["studies"][uid] = None
                continue
            out["studies"][uid] = {{
                "series": st.number_of_study_related_series,
                "instances": st.number_of_study_related_instances,
                "modalities": st.modalities_in_study,
                "patient_id": st.patient.patient_id,
                "series_counts": {{s.series_instance_uid: s.number_of_series_related_instances
                                  for s in st.series.all()}},
                "rows": Instance.objects.filter(series__study=st).count(),
            }}
        for uid in {list(instances)!r}:
            row = Instance.objects.filter(sop_instance_uid=uid).values("storage_key", "sha256").first()
            out["instances"][uid] = row
        out["patients"] = {{p: Patient.objects.filter(patient_id=p).exists() for p in {list(patients)!r}}}
        out["audit"] = list(AuditEvent.objects.filter(study_instance_uid__in={list(studies)!r})
                            .values_list("action", "outcome", "detail"))
        print("INDEX-STATE " + json.dumps(out))
    """)
    result = server.manage("shell", "-c", code)
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("INDEX-STATE "))
    return json.loads(line.removeprefix("INDEX-STATE "))


def unique_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def restricted_server(tmp_path_factory, live_server_proc) -> LiveServer:
    """A second server with small limits: 200 kB STOW bodies, C-STORE only from the AE title ALLOWEDSCU."""
    server = make_live_server(tmp_path_factory.mktemp("lightbox-restricted"), production=False)
    server.env.update(LIGHTBOX_STOW_MAX_BYTES="200000", LIGHTBOX_DICOM_ALLOWED_AES="ALLOWEDSCU")
    source = live_server_proc.data_dir / "lightbox.sqlite3"
    if source.exists():  # the users and schema of the main server, copied: saves the migrate and create_user runs
        with sqlite3.connect(source) as src, sqlite3.connect(server.data_dir / "lightbox.sqlite3") as dst:
            src.backup(dst)
        with sqlite3.connect(server.data_dir / "lightbox.sqlite3") as db:
            db.execute("DELETE FROM archive_instance")
            db.execute("DELETE FROM archive_series")
            db.execute("DELETE FROM archive_study")
            db.execute("DELETE FROM archive_patient")
        server.manage = _no_setup(server.manage)  # type: ignore[method-assign]
    server.start()
    server.__dict__.pop("manage", None)  # back to the class's method
    yield server
    server.stop()


def _no_setup(manage):
    """``LiveServer.manage`` that skips the start-up's migrate and create_user, already done in the copy."""

    def run(*args, **kwargs):
        if args and args[0] in {"migrate", "create_user"}:
            return None
        return manage(*args, **kwargs)

    return run
