"""``manage.py import_dicom PATH...``: copy DICOM files from disk into the archive.

Files are stored through the same :func:`archive.ingest.store_file` as STOW-RS and C-STORE, copied (the
user's files are never moved or changed). A file is taken for DICOM when it has the PS3.10 preamble and
"DICM" prefix; anything else is counted as skipped, not failed. Exit status: 0 when nothing failed, else 1.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.core.management.base import BaseCommand

BATCH = 50  # files indexed in one transaction, and announced together


@dataclass
class ImportSummary:
    stored: int = 0
    duplicate: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def line(self) -> str:
        return (f"stored {self.stored}, already present {self.duplicate}, skipped as non-DICOM {self.skipped}, "
                f"failed {len(self.failures)}")


def is_dicom_file(path: Path) -> bool:
    """The PS3.10 signature: 128 bytes of preamble, then "DICM". Raises OSError when unreadable."""
    with open(path, "rb") as fp:
        head = fp.read(132)
    return len(head) == 132 and head[128:] == b"DICM"


def walk(paths: list[str], recursive: bool, failures: list[tuple[str, str]]) -> Iterator[Path]:
    """Every regular file under ``paths``, in a stable order; unreadable folders go into ``failures``."""
    for raw in paths:
        root = Path(raw)
        if root.is_file():
            yield root
        elif root.is_dir():
            if not recursive:
                try:
                    yield from sorted(p for p in root.iterdir() if p.is_file())
                except OSError as exc:
                    failures.append((str(root), f"cannot list the folder: {exc.strerror or exc}"))
                continue

            def on_error(exc: OSError, root: Path = root) -> None:
                failures.append((exc.filename or str(root), f"cannot list the folder: {exc.strerror or exc}"))

            for folder, dirs, files in os.walk(root, onerror=on_error):
                dirs.sort()
                for name in sorted(files):
                    path = Path(folder) / name
                    if path.is_file():
                        yield path
        else:
            failures.append((raw, "no such file or folder"))


class Command(BaseCommand):
    help = "Import DICOM files and folders into the archive (copies them); exit status 1 when any file failed."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to import")
        parser.add_argument("--no-recursive", dest="recursive", action="store_false",
                            help="import only the files directly inside each folder")
        parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")

    def handle(self, *args, paths: list[str], recursive: bool, progress: bool, **opts):
        from tqdm import tqdm

        from archive.ingest import notify_stored, store_files

        summary = ImportSummary()
        files = list(walk(paths, recursive, summary.failures))
        with tqdm(total=len(files), unit="file", file=sys.stderr, disable=not progress, dynamic_ncols=True) as bar:
            for start in range(0, len(files), BATCH):
                batch = files[start:start + BATCH]
                dicom = []
                for path in batch:
                    try:
                        if is_dicom_file(path):
                            dicom.append(path)
                        else:
                            summary.skipped += 1
                    except OSError as exc:
                        summary.failures.append((str(path), f"cannot read the file: {exc.strerror or exc}"))
                outcomes = store_files(dicom)  # copies: the user's files stay as they are
                for path, outcome in zip(dicom, outcomes, strict=True):
                    if outcome.status == "stored":
                        summary.stored += 1
                    elif outcome.status == "duplicate":
                        summary.duplicate += 1
                    else:
                        summary.failures.append((str(path), f"{outcome.reason} (0x{outcome.code:04X})"))
                notify_stored(outcomes)
                bar.update(len(batch))
        for path, reason in summary.failures:
            self.stderr.write(f"failed: {path}: {reason}")
        self.stdout.write(summary.line())
        if summary.failures:
            sys.exit(1)
