"""A server under test, as the benchmark sees it: a DICOMweb root, credentials and a DICOM listener."""
from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import quote

import requests

FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
DICOM_JSON = "application/dicom+json"
BROWSER_GZIP = "gzip, deflate"  # what a browser offers, less br/zstd (requests may not decode them)
ENCODINGS = {"gzip": BROWSER_GZIP, "identity": "identity"}
BROWSER_SAFE = "-_.!~*'()"  # characters JavaScript's encodeURIComponent leaves as they are


@dataclass
class Target:
    name: str
    dicomweb: str
    auth: tuple[str, str] | None
    dicom_port: int
    ae_title: str
    thumbnails: bool
    description: str = ""

    def session(self) -> requests.Session:
        s = requests.Session()
        s.auth = self.auth
        return s

    def auth_headers(self) -> dict[str, str]:
        if not self.auth:
            return {}
        token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def url(self, path: str, params: dict[str, str] | None = None) -> str:
        """The URL of ``path`` under the DICOMweb root, with ``params`` encoded as a browser's
        ``encodeURIComponent`` does (``*`` stays literal: Orthanc does not URL-decode QIDO values)."""
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe=BROWSER_SAFE)}" for k, v in (params or {}).items())
        return f"{self.dicomweb}/{path.lstrip('/')}" + (f"?{query}" if query else "")

    def instance_path(self, study: str, series: str, sop: str) -> str:
        return f"studies/{study}/series/{series}/instances/{sop}"
