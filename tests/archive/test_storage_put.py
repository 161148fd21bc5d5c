"""LocalStorage.put_many and the parse pool's sync: every stored file is made durable exactly once, before it
is renamed into the store; a bad part is never synced or stored."""
from __future__ import annotations

from pathlib import Path

import pytest

from archive import parse_pool
from archive.storage import local
from archive.storage.local import LocalStorage
from tests.dicomgen import make_ct_series


@pytest.fixture
def synced_paths(monkeypatch) -> list[str]:
    seen: list[str] = []
    real = local._fsync

    def spy(path):
        seen.append(str(path))
        real(path)

    monkeypatch.setattr(local, "_fsync", spy)
    return seen


def _staged(store: LocalStorage, n: int) -> list[Path]:
    out = []
    for i in range(n):
        fp, path = store.new_staging_file()
        with fp:
            fp.write(f"file {i}".encode())
        out.append(path)
    return out


def test_files_synced_by_their_parse_are_not_synced_again(tmp_path, synced_paths):
    store = LocalStorage(tmp_path / "store")
    sources = _staged(store, 4)
    keys = store.put_many(sources, synced=[True, False, True, False])
    assert sorted(synced_paths) == sorted(str(p) for p in (sources[1], sources[3]))
    for i, key in enumerate(keys):
        assert store.local_path(key).read_bytes() == f"file {i}".encode()
        assert not sources[i].exists()


@pytest.mark.parametrize("n", [1, 3])
def test_without_flags_every_file_is_synced_before_its_rename(tmp_path, synced_paths, n):
    store = LocalStorage(tmp_path / "store")
    sources = _staged(store, n)
    keys = store.put_many(sources)
    assert sorted(synced_paths) == sorted(map(str, sources)) and len(keys) == n
    assert all(isinstance(k, str) for k in keys)


def test_a_missing_source_fails_alone_and_removed_folders_are_made_again(tmp_path):
    store = LocalStorage(tmp_path / "store")
    good, gone = _staged(store, 2)
    gone.unlink()
    first, missing = store.put_many([good, gone], synced=[True, True])
    assert isinstance(first, str) and isinstance(missing, OSError)
    # a folder removed behind the store's back (the store goes on using the folder it made)
    store.local_path(first).unlink()
    store.local_path(first).parent.rmdir()
    (again,) = _staged(store, 1)
    key = store.put(again)
    assert store.local_path(key).read_bytes() == b"file 0"


def test_check_file_syncs_only_files_that_can_be_stored(tmp_path, monkeypatch):
    synced: list[str] = []
    monkeypatch.setattr(parse_pool, "fsync_path", lambda p: synced.append(str(p)))
    good = make_ct_series(tmp_path / "ct", slices=1, size=16)[0]
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"not dicom" * 50)
    ok = parse_pool.check_file(good, True)
    refused = parse_pool.check_file(bad, True)
    assert ok.parsed is not None and ok.synced
    assert refused.reason and not refused.synced
    assert parse_pool.check_file(good).synced is False
    assert synced == [str(good)]


@pytest.mark.parametrize("sizes", [[], [1], [4096], [4097], [1 << 20], [(1 << 20) + 1, 5],
                                   [3000, 70000, 1 << 20, 123, 524288 + 1516], [1] * 5000])
def test_uploads_written_around_the_page_cache_hold_exactly_what_was_written(tmp_path, sizes):
    store = LocalStorage(tmp_path / "store")
    data = [bytes([n % 251]) * size for n, size in enumerate(sizes)]
    fp, path = store.new_upload_file()
    with fp:
        for chunk in data:
            fp.write(memoryview(chunk))
    assert path.parent == store.staging_dir()
    assert path.read_bytes() == b"".join(data)


def test_uploads_fall_back_to_the_page_cache_where_direct_io_is_refused(tmp_path, monkeypatch):
    """tmpfs and some devices refuse O_DIRECT (EINVAL) when opening or writing: the upload is written as before."""
    import errno
    import os

    from archive.storage import direct_io

    store = LocalStorage(tmp_path / "store")
    real_write = os.write
    refused: list[int] = []

    def write(fd, data):  # the device refuses the alignment once: the file goes on through the page cache
        if not refused:
            refused.append(fd)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(direct_io.os, "write", write)
    fp, path = store.new_upload_file()
    with fp:
        fp.write(b"a" * 5000)
    assert refused and path.read_bytes() == b"a" * 5000
    monkeypatch.setattr(direct_io.os, "write", real_write)

    real_open = os.open

    def open_(path, flags, *args):
        if flags & getattr(os, "O_DIRECT", 0):
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)

    monkeypatch.setattr(direct_io.os, "open", open_)
    fp, path = store.new_upload_file()
    with fp:
        fp.write(b"b" * 3)
    assert path.read_bytes() == b"b" * 3
