"""A real Lightbox server process for tests: `manage.py serve` on free ports with its own data folder.

Tests talk to it with real clients (dicomweb-client, pynetdicom, storescu, websockets, Chromium).
With ``LIGHTBOX_TEST_MODE=production`` (and ``LIGHTBOX_TEST_DATABASE_URL``, ``LIGHTBOX_TEST_REDIS_URL``), the
server runs the production path: its own fresh PostgreSQL database, Redis as broker and channel layer, and a
Celery worker as a separate process.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

USERS = {
    "admin": ("admin", "admin-pass-123"),
    "radiologist": ("rad", "rad-pass-123"),
    "resident": ("resident", "resident-pass-123"),
    "technologist": ("tech", "tech-pass-123"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _create_database(admin_url: str) -> str:
    """A new, empty PostgreSQL database next to the one in ``admin_url``; returns its URL."""
    import psycopg

    name = f"lbx_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


@dataclass
class LiveServer:
    data_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    dicom_port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicomweb"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def auth(self, role: str = "radiologist") -> tuple[str, str]:
        return USERS[role]

    def session(self, role: str = "radiologist") -> requests.Session:
        s = requests.Session()
        s.auth = USERS[role]
        return s

    def manage(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run ``manage.py`` against this server's data; a failure raises with the command's output."""
        done = subprocess.run(
            [PYTHON, str(ROOT / "manage.py"), *args],
            env=self.env, capture_output=True, text=True, timeout=timeout,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def start(self, *, worker_process: bool | None = None) -> LiveServer:
        self.manage("migrate", "--noinput")
        for role, (name, password) in USERS.items():
            self.manage("create_user", name, "--role", role, "--password", password)
        log = open(self.data_dir / "server.log", "ab")
        self.procs.append(subprocess.Popen(
            [PYTHON, str(ROOT / "manage.py"), "serve", "--port", str(self.port), "--dicom-port", str(self.dicom_port)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        ))
        if worker_process if worker_process is not None else "REDIS_URL" in self.env:
            self.start_worker()
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.procs[0].poll() is not None:
                raise RuntimeError(f"server exited: {(self.data_dir / 'server.log').read_text()[-3000:]}")
            try:
                requests.get(f"{self.url}/accounts/login/", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("server did not start within 60 s")

    @property
    def production(self) -> bool:
        return "REDIS_URL" in self.env

    def start_worker(self) -> subprocess.Popen:
        """A Celery worker as its own process (production topology)."""
        wlog = open(self.data_dir / "worker.log", "ab")
        proc = subprocess.Popen(
            [PYTHON, "-m", "celery", "-A", "lightbox", "worker", "-Q", "cpu,gpu", "-c", "1", "-P", "threads",
             "--without-heartbeat", "--without-mingle", "--without-gossip", "-l", "INFO"],
            env=self.env, cwd=ROOT / "backend", stdout=wlog, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def kill_workers(self) -> None:
        """SIGKILL every worker process (a machine dying mid-job)."""
        for proc in self.procs[1:]:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs[1:] = []

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()

    def log(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


def make_live_server(data_dir: Path, *, production: bool | None = None) -> LiveServer:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env.update(LIGHTBOX_DATA=str(data_dir), PYTHONUNBUFFERED="1", DJANGO_SETTINGS_MODULE="lightbox.settings")
    # a killed worker's job comes back after this many seconds (production default: 600)
    env.setdefault("LIGHTBOX_VISIBILITY_TIMEOUT", "20")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "backend"), str(ROOT)])
    db_url = os.environ.get("LIGHTBOX_TEST_DATABASE_URL")
    redis_url = os.environ.get("LIGHTBOX_TEST_REDIS_URL")
    if production is None:
        production = os.environ.get("LIGHTBOX_TEST_MODE", "embedded") == "production"
    if production:
        if not (db_url and redis_url):
            raise RuntimeError("production mode needs LIGHTBOX_TEST_DATABASE_URL and LIGHTBOX_TEST_REDIS_URL")
        env["DATABASE_URL"] = _create_database(db_url)
        env["REDIS_URL"] = redis_url
    return LiveServer(data_dir=data_dir, env=env)
