"""``manage.py load_demo``: write the synthetic demo studies (known ground truth) and store them in the archive."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from archive.ingest import notify_stored, store_file
from archive.models import Study
from demo import builders
from demo.uids import CR_STUDY, CT_STUDY, MR_STUDY


class Command(BaseCommand):
    help = (
        "Load the demo data: a synthetic chest CT (300 x 512x512, nodules of known size), a brain MR, a chest "
        "radiograph, and pydicom's sample files. Skips what is already there."
    )

    def add_arguments(self, parser):
        parser.add_argument("--ct-slices", type=int, default=None, help="fewer CT slices (tests); default 300")
        parser.add_argument("--only", choices=["ct", "mr", "cr", "samples"], action="append", help="load only these")
        parser.add_argument("--force", action="store_true", help="regenerate even if the studies exist")

    def handle(self, *args, ct_slices: int | None, only: list[str] | None, force: bool, **opts):
        if ct_slices is not None and not 8 <= ct_slices <= 1000:
            raise CommandError("--ct-slices must be between 8 and 1000.")
        wanted = set(only or ["ct", "mr", "cr", "samples"])
        root = Path(settings.DATA_DIR) / "demo"
        root.mkdir(parents=True, exist_ok=True)
        steps = {
            "ct": (CT_STUDY, lambda: builders.write_ct(root, ct_slices)[0]),
            "mr": (MR_STUDY, lambda: builders.write_mr(root)),
            "cr": (CR_STUDY, lambda: builders.write_radiograph(root)),
            "samples": (None, lambda: builders.write_samples(root)),
        }
        for name, (study_uid, build) in steps.items():
            if name not in wanted:
                continue
            if study_uid and not force and Study.objects.filter(study_instance_uid=study_uid).exists():
                self.stdout.write(f"demo {name}: already loaded")
                continue
            started = time.monotonic()
            paths = build()
            outcomes = [store_file(p) for p in paths]
            notify_stored(outcomes)
            failed = [o for o in outcomes if not o.ok]
            for o in failed:
                self.stderr.write(f"demo {name}: {o.sop_instance_uid or '?'} failed: {o.reason}")
            stored = sum(o.status == "stored" for o in outcomes)
            self.stdout.write(
                f"demo {name}: {stored} stored, {len(outcomes) - stored - len(failed)} already present, "
                f"{len(failed)} failed ({time.monotonic() - started:.1f} s)"
            )
            if name != "samples":
                shutil.rmtree(root / name, ignore_errors=True)  # the archive holds its own copies
