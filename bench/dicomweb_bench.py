"""Lightbox against Orthanc on the same data, same machine: the archive figures of issue #2.

    .venv/bin/python bench/dicomweb_bench.py [--quick] [--no-orthanc] [--production]

Starts Orthanc (auth disabled, DICOMweb plugin) and Lightbox (``manage.py serve``, embedded mode, HTTP Basic as
user rad) on free loopback ports with fresh temporary stores, loads the same studies into both, measures STOW-RS,
C-STORE, QIDO-RS (10 and 10,000 studies), metadata, frames, search-to-first-frame and rendered images, prints the
table with the Lightbox/Orthanc ratio, and writes it as JSON to bench/out/. See bench/README.md and
docs/PERFORMANCE.md. ``--production`` adds a Lightbox on PostgreSQL (needs LIGHTBOX_TEST_DATABASE_URL).
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _p in (str(ROOT), str(ROOT / "backend")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from bench import figures as fig  # noqa: E402
from bench import orthanc as orthanc_mod  # noqa: E402
from bench.data import CT_PATIENT, CtSeries, UidRoots, demo_ct, rerooted, seed_instances, small_studies  # noqa: E402
from bench.lightbox_server import USER, mode, start_lightbox  # noqa: E402
from bench.measure import BenchError  # noqa: E402
from bench.probes import Probe, run_interleaved  # noqa: E402
from bench.report import Figure, errors, markdown, table, write_json  # noqa: E402
from bench.targets import Target  # noqa: E402
from tests.livesrv import LiveServer, _create_database  # noqa: E402

OUT = ROOT / "bench" / "out"
SEED_STUDIES = 10_000


@dataclass(frozen=True)
class Plan:
    """How much of each measurement: the full run (~5-10 min) or --quick (~2 min)."""
    stow4_instances: int = 300
    cstore_instances: int = 300
    qido_n: int = 40
    meta_n: int = 20
    frame_seconds: float = 4.0
    wrk_seconds: float = 4.0
    first_frame_n: int = 10
    render_n: int = 20
    fresh_instances: int = 100
    seed_studies: int = SEED_STUDIES
    orthanc_seed_deadline_s: float = 180.0


QUICK = Plan(stow4_instances=100, cstore_instances=40, qido_n=12, meta_n=6, frame_seconds=1.5, wrk_seconds=4,
             first_frame_n=4, render_n=6, fresh_instances=40, seed_studies=0)


class Bench:
    def __init__(self, plan: Plan, targets: list[Target]) -> None:
        self.plan = plan
        self.targets = targets
        self.figures: list[Figure] = []
        self.started = time.monotonic()

    def log(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:5.0f}s] {text}", file=sys.stderr, flush=True)

    def measure(self, key: str, label: str, unit: str, make: Callable[[Target], Probe], rounds: int) -> Figure:
        """Build each target's probe, run ``rounds`` interleaved rounds, record the values (or the errors)."""
        figure = Figure(key, label, unit)
        probes = {}
        for target in self.targets:
            try:
                probes[target.name] = make(target)
            except Exception as exc:  # noqa: BLE001 - a failure costs one cell, not the run
                figure.errors[target.name] = _reason(exc)
        figure.values = run_interleaved(probes, rounds, figure.errors, _reason)
        self.figures.append(figure)
        self.log(f"{label}: " + ", ".join(f"{t.name} {figure.cell(t.name)}" for t in self.targets)
                 + "".join(f"\n        {t}: {e}" for t, e in figure.errors.items()))
        return figure

    def latency(self, key: str, label: str, make: Callable[[Target], Probe], n: int) -> Figure:
        return self.measure(key, label, "ms", make, n)


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {exc}"[:300]


def load(target: Target, server: LiveServer | None, series_files: list[tuple[CtSeries, list[Path]]]) -> None:
    """Store studies by STOW-RS (one request per study); on Lightbox fall back to ``import_dicom``."""
    for series, paths in series_files:
        try:
            fig.send_stow(target, fig.stow_bodies(series.blobs, len(series.blobs)), clients=1)
            fig.expect_stored(target, series.study_uid, len(series.blobs), "STOW answered 200")
        except BenchError:
            if server is None:
                raise
            server.manage("import_dicom", "--no-progress", *map(str, paths))


def as_series(paths: list[Path]) -> CtSeries:
    import pydicom

    first = pydicom.dcmread(paths[0], stop_before_pixels=True)
    return CtSeries(str(first.StudyInstanceUID), str(first.SeriesInstanceUID),
                    [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths],
                    [p.read_bytes() for p in paths])


def qido_figures(bench: Bench, scale: str, patient_ids: dict[str, str]) -> None:
    n = bench.plan.qido_n
    base = {"limit": "101"}
    key = scale.split()[0]
    bench.latency(f"qido_{key}_list", f"QIDO study list, limit 101 ({scale})", lambda t: fig.qido(t, base), n)
    bench.latency(f"qido_{key}_name", f"QIDO PatientName=SMI* ({scale})",
                  lambda t: fig.qido(t, {**base, "PatientName": "SMI*"}), n)
    bench.latency(f"qido_{key}_id", f"QIDO PatientID ({scale})",
                  lambda t: fig.qido(t, {**base, "PatientID": patient_ids[t.name]}), n)
    bench.latency(f"qido_{key}_date", f"QIDO StudyDate range, 1 quarter ({scale})",
                  lambda t: fig.qido(t, {**base, "StudyDate": "20200101-20200331"}), n)


def seed(bench: Bench, servers: dict[str, LiveServer], orthancs: dict[str, orthanc_mod.OrthancServer]) -> dict:
    """Grow every index to ``seed_studies`` studies; returns what it took, per target."""
    count = bench.plan.seed_studies
    done = {}
    for target in bench.targets:
        start = time.perf_counter()
        if target.name in servers:
            servers[target.name].manage("seed_index", "--studies", str(count), "--series", "1", "--instances", "1",
                                        "--seed", "1")
            done[target.name] = {"studies": count, "seconds": time.perf_counter() - start,
                                 "how": "manage.py seed_index (index rows, no files)"}
        elif target.name in orthancs:
            result = fig.post_instances_orthanc(orthancs[target.name].url, seed_instances(count), clients=4,
                                                deadline_s=bench.plan.orthanc_seed_deadline_s)
            done[target.name] = {"studies": result["stored"], "seconds": result["seconds"],
                                 "how": "REST POST /instances, 4 clients, 1-instance studies",
                                 "errors": result["errors"]}
        bench.log(f"seeded {target.name}: {done[target.name]}")
    return done


def read_figures(bench: Bench, plan: Plan, ct: CtSeries, stow1: CtSeries, roots: UidRoots) -> None:
    """Metadata, frames, search to first frame, rendered images: on the CT stored by STOW-RS."""
    study, series = stow1.study_uid, stow1.series_uid
    bench.latency("qido_instances", f"QIDO instances of the {len(ct.blobs)}-slice series",
                  lambda t: fig.qido(t, {}, path=f"studies/{study}/series/{series}/instances"), plan.meta_n)
    for level, path in (("study", f"studies/{study}/metadata"),
                        ("series", f"studies/{study}/series/{series}/metadata")):
        for enc in ("identity", "gzip"):
            bench.latency(f"metadata_{level}_{enc}", f"{level.capitalize()} metadata, 300 inst., {enc}",
                          lambda t, p=path, e=enc: fig.metadata(t, p, e), plan.meta_n)
    for enc in ("gzip", "identity"):
        for clients in (1, 6):  # 6 independent clients: 6 processes (viewers are separate browsers)
            bench.measure(f"frames_{clients}_{enc}", f"Frames, {clients} client{'s' * (clients > 1)}, {enc}",
                          " fr/s", lambda t, c=clients, e=enc: fig.frames(t, stow1, c, e, plan.frame_seconds / 2,
                                                                          processes=c > 1), rounds=2)
    # the figure measured until 26 Nov 2026: six threads of one Python process, whose GIL is then the limit
    bench.measure("frames_6threads_identity", "Frames, 6 threads of one Python client, identity", " fr/s",
                  lambda t: fig.frames(t, stow1, 6, "identity", plan.frame_seconds / 2), rounds=2)
    if shutil.which("wrk"):
        for conns, enc in ((1, "identity"), (6, "identity"), (6, "gzip")):
            bench.measure(f"wrk_{conns}_{enc}", f"Frames, wrk {conns} conn., {enc}", " fr/s",
                          lambda t, c=conns, e=enc: fig.frames_wrk(t, stow1, c, e, plan.wrk_seconds / 2), rounds=2)
    for enc in ("gzip", "identity"):
        bench.latency(f"first_frame_{enc}", f"Search to first frame, {enc}",
                      lambda t, e=enc: fig.first_frame(t, stow1, CT_PATIENT[1], e), plan.first_frame_n)
    fresh = {t.name: [roots.next(), roots.next()] for t in bench.targets}  # a new study per target and round
    bench.latency("fresh_frames", f"First read of each frame of a study just stored ({plan.fresh_instances} inst.)",
                  lambda t: fig.fresh_frames(t, ct, fresh[t.name], plan.fresh_instances), 2)
    bench.latency("rendered", "Rendered JPEG of an instance", lambda t: fig.rendered(t, stow1, "rendered"),
                  plan.render_n)
    bench.latency("thumbnail", "Thumbnail of an instance", lambda t: fig.rendered(t, stow1, "thumbnail"),
                  plan.render_n)


def ratio_pairs(names: list[str]) -> list[tuple[str, str]]:
    """Which ratios to print: each Lightbox against the Orthanc on the same kind of index where there is one
    (Lightbox-PG against Orthanc-PG), else against Orthanc."""
    if "Orthanc" not in names:
        return []
    pairs = []
    for name in names:
        if name.startswith("Lightbox"):
            twin = name.replace("Lightbox", "Orthanc", 1)
            pairs.append((name, twin if twin in names else "Orthanc"))
    return pairs


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip()
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "lightbox_commit": commit,
            "load_average_at_start": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, no 10,000-study index (~2 min)")
    parser.add_argument("--no-orthanc", action="store_true", help="measure Lightbox only")
    parser.add_argument("--production", action="store_true",
                        help="also measure Lightbox on PostgreSQL (LIGHTBOX_TEST_DATABASE_URL)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores (path printed)")
    parser.add_argument("--seed-studies", type=int, default=None, metavar="N",
                        help=f"studies added to every index before the second round of searches (default {SEED_STUDIES:,}; "
                             "100000 for the issue's scale: Orthanc takes minutes to take them)")
    parser.add_argument("--only", default="", metavar="GROUPS",
                        help="comma-separated figure groups to run: qido, stow, cstore, reads (default: all)")
    args = parser.parse_args(argv)
    groups = {"qido", "stow", "cstore", "reads"}
    only = {g.strip() for g in args.only.split(",") if g.strip()} or groups
    if only - groups:
        parser.error(f"--only: unknown group(s) {', '.join(sorted(only - groups))} (known: {', '.join(sorted(groups))})")
    plan = QUICK if args.quick else Plan()
    if args.seed_studies is not None:
        if args.seed_studies < 0:
            parser.error("--seed-studies: a number of studies, 0 or more")
        # Orthanc stores ~500 one-instance studies a second here: give it a minute per 10,000, three at least
        plan = replace(plan, seed_studies=args.seed_studies,
                       orthanc_seed_deadline_s=max(180.0, args.seed_studies / 10_000 * 60.0))
    for tool in ("storescu", "wrk"):
        if not shutil.which(tool):
            print(f"note: {tool} not found, its figures will be missing", file=sys.stderr)

    tmp = Path(tempfile.mkdtemp(prefix="lightbox-bench-"))
    orthancs: dict[str, orthanc_mod.OrthancServer] = {}
    servers: dict[str, LiveServer] = {}
    targets: list[Target] = []
    meta: dict = {"quick": args.quick, "plan": plan.__dict__, "machine": machine(), "targets": {}}
    bench = Bench(plan, targets)
    try:
        bench.log("preparing data (the CT is generated once, then cached in bench/out/cache)")
        ct = demo_ct()
        roots = UidRoots()
        stow1, stow4 = rerooted(ct, roots.next()), rerooted(ct, roots.next(), plan.stow4_instances)
        cstore1, cstore4 = (rerooted(ct, roots.next(), plan.cstore_instances) for _ in range(2))
        small = small_studies(tmp / "small")
        small_series = [(as_series(paths), paths) for paths in small]
        cstore_files = {n: s.write(tmp / f"cstore{n}") for n, s in ((1, cstore1), (4, cstore4))}

        db_url = os.environ.get("LIGHTBOX_TEST_DATABASE_URL") if args.production else None
        if args.production and not db_url:
            raise SystemExit("--production needs LIGHTBOX_TEST_DATABASE_URL (a PostgreSQL admin URL)")
        if not args.no_orthanc:
            why = orthanc_mod.available()
            if why:
                raise SystemExit(f"Orthanc unavailable: {why} (or run with --no-orthanc)")
            variants = [("Orthanc", None, "SQLite index")]
            if db_url:  # Lightbox-PG's counterpart: Orthanc with its PostgreSQL index plugin, on the same server
                if why := orthanc_mod.postgresql_available():
                    bench.log(f"no Orthanc-PG: {why}")
                else:
                    variants.append(("Orthanc-PG", _create_database(db_url), "PostgreSQL index"))
            for name, database, index in variants:
                server = orthanc_mod.OrthancServer(tmp / name.lower(), postgresql=database).start()
                orthancs[name] = server
                targets.append(Target(name, server.dicomweb, None, server.dicom_port, orthanc_mod.AE_TITLE,
                                      thumbnails=False,
                                      description=f"{server.version()}, {index}, authentication disabled"))
        bench.log("starting Lightbox")
        lightboxes = [("Lightbox", None)]
        if db_url:
            lightboxes.append(("Lightbox-PG", db_url))
        for name, db_url in lightboxes:
            server = start_lightbox(tmp / name.lower(), database_url=db_url,
                                    redis_url=os.environ.get("LIGHTBOX_TEST_REDIS_URL") if db_url else None)
            servers[name] = server
            targets.append(Target(name, server.dicomweb, USER, server.dicom_port, "LIGHTBOX", thumbnails=True,
                                  description=f"manage.py serve ({mode(server)}), HTTP Basic"))
        meta["targets"] = {t.name: t.description for t in targets}
        for t in targets:
            bench.log(f"target {t.name}: {t.description} at {t.dicomweb}")

        bench.log("loading 10 small studies into each")  # always: --only runs start from the same warm servers
        for t in targets:
            load(t, servers.get(t.name), small_series)
        if "qido" in only:
            bench.latency("floor", "Floor: QIDO matching nothing (10 studies)", fig.floor, plan.qido_n)
            small_ids = {t.name: "BENCH-003" for t in targets}
            qido_figures(bench, "10 studies", small_ids)

        if "stow" in only:
            bench.measure("stow_1", "STOW-RS, 1 client (10 inst./request)", " inst/s",
                          lambda t: fig.stow(t, stow1, 1), rounds=2)
            bench.measure("stow_4", "STOW-RS, 4 clients (10 inst./request)", " inst/s",
                          lambda t: fig.stow(t, stow4, 4), rounds=2)
        for t in targets if "reads" in only else []:  # the reads need the CT: where STOW failed, import it
            if t.name in servers and fig.study_instance_count(t, stow1.study_uid) != len(stow1.blobs):
                bench.log(f"{t.name}: STOW did not store the CT, importing it with import_dicom")
                load(t, servers[t.name], [(stow1, stow1.write(tmp / "ct-import"))])
        if "cstore" in only and shutil.which("storescu"):
            bench.measure("cstore_1", "C-STORE storescu, 1 association", " inst/s",
                          lambda t: fig.cstore(t, cstore_files[1], 1, cstore1.study_uid), rounds=2)
            bench.measure("cstore_4", "C-STORE storescu, 4 processes", " inst/s",
                          lambda t: fig.cstore(t, cstore_files[4], 4, cstore4.study_uid), rounds=2)

        if "reads" in only:
            read_figures(bench, plan, ct, stow1, roots)

        if plan.seed_studies and "qido" in only:
            bench.log(f"growing every index to {plan.seed_studies:,} more studies")
            meta["seeding"] = seed(bench, servers, orthancs)
            scale = f"{plan.seed_studies // 1000}k studies"
            ids = {}
            for t in targets:
                try:
                    ids[t.name] = fig.any_patient_id(t, "SMITH")
                except Exception as exc:  # noqa: BLE001
                    ids[t.name] = "NONE"
                    bench.log(f"{t.name}: no seeded patient found ({exc})")
            qido_figures(bench, scale, ids)
    finally:
        for server in servers.values():
            server.stop()
        for server in orthancs.values():
            server.stop()
        if args.keep:
            print(f"stores kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    names = [t.name for t in targets]
    pairs = ratio_pairs(names)
    meta["seconds"] = time.monotonic() - bench.started
    meta["machine"]["load_average_at_end"] = os.getloadavg()
    print()
    for t in targets:
        print(f"{t.name}: {t.description}")
    loadavg = meta["machine"]["load_average_at_start"][0], meta["machine"]["load_average_at_end"][0]
    print(f"machine: {meta['machine']['cpus']} CPUs ({meta['machine']['cpu']}), client and server on loopback, "
          f"load average {loadavg[0]:.1f} at start, {loadavg[1]:.1f} at end")
    if max(loadavg) > (os.cpu_count() or 1) * 0.75:
        print("WARNING: other work was running on this machine: absolute figures are low, ratios less reliable")
    print("ratios are Lightbox/Orthanc (on PostgreSQL: Lightbox-PG/Orthanc-PG where both ran); 'better' says "
          "which direction wins; latency cells are median / p95\n")
    print(table(bench.figures, names, pairs))
    if errs := errors(bench.figures):
        print("\n" + errs)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    meta["markdown"] = markdown(bench.figures, names, pairs)
    meta["only"] = sorted(only)
    name = f"dicomweb-{stamp}" + ("" if only == groups else "-" + "-".join(sorted(only)))
    # a partial run (--only) does not replace dicomweb-latest.json, which holds the last full table
    for path in (OUT / f"{name}.json", *((OUT / "dicomweb-latest.json",) if only == groups else ())):
        write_json(path, meta, bench.figures)
    print(f"\nwritten to {OUT / f'{name}.json'} ({meta['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
