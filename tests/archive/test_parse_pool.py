"""The parse processes (archive.parse_pool): the same answers as parsing in the thread, from several threads at
once; a killed process is replaced and what it owed is parsed by the caller; nothing is left running after."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from archive import parse_pool
from tests.archive.ingest_helpers import multipart
from tests.archive.test_stow import _post, _series, _stored
from tests.livesrv import ROOT


def _summary(result: parse_pool.Checked) -> tuple:
    parsed = result.parsed
    return (parsed and parsed.sop_instance_uid, parsed and parsed.series_instance_uid, result.reason, result.code,
            result.unreadable, result.synced)


@pytest.fixture
def pool(monkeypatch):
    """A fresh pool of two processes, stopped after the test."""
    parse_pool.shutdown()
    monkeypatch.setenv("LIGHTBOX_PARSE_PROCESSES", "2")
    monkeypatch.setattr(parse_pool, "_pool_failed", False)
    yield parse_pool
    parse_pool.shutdown()


@pytest.fixture
def files(small_ct, tmp_path) -> list[Path]:
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"not DICOM" * 50)
    return [*small_ct, bad, tmp_path / "missing.dcm"]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_results_are_those_of_the_thread_from_several_threads_at_once(pool, files):
    expected = [_summary(parse_pool.check_file(p)) for p in files]
    got: list[list[tuple]] = []
    lock = threading.Lock()

    def run():
        for _ in range(4):
            answers = [_summary(r) for r in pool.check_files(files)]
            with lock:
                got.append(answers)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 24 and all(answers == expected for answers in got)
    assert len(pool.worker_pids()) == 2
    answered = [w.answered for w in pool._pool.workers]
    assert sum(answered) == 24 * len(files) and min(answered) > 0  # both processes took a share


def test_without_processes_files_are_parsed_in_the_thread(pool, files, monkeypatch):
    monkeypatch.setenv("LIGHTBOX_PARSE_PROCESSES", "0")
    assert [_summary(r) for r in pool.check_files(files)] == [_summary(pool.check_file(p)) for p in files]
    assert pool.worker_pids() == []


def test_a_killed_process_is_replaced_and_what_it_owed_is_parsed_by_the_caller(pool, files, tmp_path):
    expected = [_summary(pool.check_file(p)) for p in files]
    assert [_summary(r) for r in pool.check_files(files)] == expected
    # a request the process is stuck on (opening a FIFO nobody writes), picked up as check_soon's result would be
    fifo = tmp_path / "stuck"
    os.mkfifo(fifo)
    worker = pool._pool.workers[0]
    stuck = worker.submit(str(fifo), True)
    pool._early[pool._identity(files[0])] = stuck
    os.kill(worker.process.pid, signal.SIGKILL)
    with pytest.raises(parse_pool.WorkerLost):
        stuck.result(timeout=30)
    assert [_summary(r) for r in pool.check_files(files)] == expected
    pids = pool.worker_pids()
    assert len(pids) == 2 and worker.process.pid not in pids
    assert not _alive(worker.process.pid)


def test_shutdown_leaves_no_process_running(pool, files):
    pool.check_files(files)
    pids = pool.worker_pids()
    assert len(pids) == 2
    pool.shutdown()
    assert not any(_alive(pid) for pid in pids) and pool.worker_pids() == []
    assert pool.check_files(files[:2])  # a later call starts new processes
    assert len(pool.worker_pids()) == 2


def test_a_process_that_exits_without_shutdown_stops_its_parse_processes(small_ct):
    script = textwrap.dedent(f"""
        import sys
        from archive import parse_pool
        if __name__ == "__main__":
            parse_pool.check_files([__import__("pathlib").Path({str(small_ct[0])!r})] * 4)
            print(*parse_pool.worker_pids(), flush=True)
    """)
    env = {**os.environ, "LIGHTBOX_PARSE_PROCESSES": "2",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "backend"), str(ROOT)])}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    pids = [int(p) for p in done.stdout.split()]
    assert len(pids) == 2 and not any(_alive(pid) for pid in pids)


def _parse_processes(server_pid: int) -> set[int]:
    """The server's parse processes: the children of its forkserver."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    out = set()
    for child in children.get(server_pid, []):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"forkserver" in cmdline:
            out.update(pid for pid in children.get(child, []) if _alive(pid))
    return out


def test_the_server_stores_instances_after_its_parse_processes_were_killed(live_server_proc, tmp_path):
    server = live_server_proc
    body, content_type = multipart([p.read_bytes() for p in _series(tmp_path, 2)])
    assert _post(server, body, content_type).status_code == 200
    killed = _parse_processes(server.procs[0].pid)
    assert killed
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    paths = _series(tmp_path, 4)
    body, content_type = multipart([p.read_bytes() for p in paths])
    response = _post(server, body, content_type)
    assert response.status_code == 200 and len(_stored(response)) == 4
    assert _parse_processes(server.procs[0].pid).isdisjoint(killed)
