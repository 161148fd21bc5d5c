"""Start and stop Orthanc (with its DICOMweb plugin) as a background process in a temporary folder.

Orthanc is the archive Lightbox races (docs/PERFORMANCE.md). It runs with authentication disabled, HTTP limited to
localhost, its own free ports, and is stopped by its PID; its storage folder is deleted with the run.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import requests

from tests.livesrv import free_port

ORTHANC_BIN = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
POSTGRESQL_PLUGIN = "/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so"  # Debian: orthanc-postgresql
AE_TITLE = "ORTHANC"


def available() -> str | None:
    """None when Orthanc and its DICOMweb plugin are installed, else why not."""
    for path in (ORTHANC_BIN, DICOMWEB_PLUGIN):
        if not os.path.exists(path):
            return f"{path} is missing (apt-get install orthanc orthanc-dicomweb)"
    return None


def postgresql_available() -> str | None:
    """None when Orthanc's PostgreSQL index plugin is installed, else why not."""
    if not os.path.exists(POSTGRESQL_PLUGIN):
        return f"{POSTGRESQL_PLUGIN} is missing (apt-get install orthanc-postgresql)"
    return None


@dataclass
class OrthancServer:
    work_dir: Path
    http_port: int = field(default_factory=free_port)
    dicom_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    postgresql: str | None = None  # a database URL: the index goes there (files stay on disk), as Lightbox-PG's


    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    def config(self) -> dict:
        db = str(self.work_dir / "db")
        return {
            "Name": "bench-orthanc",
            "StorageDirectory": db, "IndexDirectory": db, "StorageCompression": False,
            "HttpPort": self.http_port, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
            "DicomServerEnabled": True, "DicomAet": AE_TITLE, "DicomPort": self.dicom_port,
            "DicomAlwaysAllowStore": True, "DicomCheckCalledAet": False,
            "HttpCompressionEnabled": True, "KeepAlive": True, "TcpNoDelay": True, "HttpThreadsCount": 50,
            "Plugins": [DICOMWEB_PLUGIN],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "Host": f"127.0.0.1:{self.http_port}", "Ssl": False},
            **self._postgresql(),
        }

    def _postgresql(self) -> dict:
        if not self.postgresql:
            return {}
        url = urlparse(self.postgresql)
        return {
            "Plugins": [DICOMWEB_PLUGIN, POSTGRESQL_PLUGIN],
            "PostgreSQL": {"EnableIndex": True, "EnableStorage": False, "Host": url.hostname or "127.0.0.1",
                           "Port": url.port or 5432, "Database": url.path.lstrip("/"),
                           "Username": unquote(url.username or ""), "Password": unquote(url.password or ""),
                           "Lock": False},
        }

    def start(self, timeout: float = 60) -> OrthancServer:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        config_path = self.work_dir / "orthanc.json"
        config_path.write_text(json.dumps(self.config(), indent=2))
        log = open(self.work_dir / "orthanc.log", "ab")
        self.proc = subprocess.Popen([ORTHANC_BIN, str(config_path)], stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited ({self.proc.returncode}): {self.log()[-2000:]}")
            try:
                if requests.get(f"{self.url}/system", timeout=1).ok:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer within {timeout:.0f} s: {self.log()[-2000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log(self) -> str:
        path = self.work_dir / "orthanc.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def version(self) -> str:
        system = requests.get(f"{self.url}/system", timeout=5).json()
        plugin = requests.get(f"{self.url}/plugins/dicom-web", timeout=5).json()
        return f"Orthanc {system.get('Version')} + DICOMweb {plugin.get('Version')}"
