"""The one way an instance enters the archive (STOW-RS, C-STORE, import_dicom, AI results).

Order of work, so that nothing is ever half-stored: parse and check the whole file; move it into the store
(atomic rename); index it in one transaction; if indexing fails, remove the file again. A SOP Instance UID
sent twice with the same bytes is a success; with different bytes it is refused as a duplicate
(0111H) and the first copy is kept. The bytes are compared when that happens (``dicom.digest``): no hash is
computed for every instance; rows indexed with a SHA-256 (``Instance.sha256``) are compared by it.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.db import DatabaseError, IntegrityError, transaction

from events.bus import publish
from events.names import Event

from .dicom import DicomError, FailureReason, ParsedInstance
from .dicom.digest import dataset_sha256_of, same_dataset
from .index_sql import Item, held_instances, index_batch
from .models import Instance
from .parse_pool import check_file, check_files
from .signals import instances_stored
from .storage import get_storage

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class StoreOutcome:
    """What happened to one instance. ``status`` is "stored", "duplicate" (same bytes already held) or "failed"."""

    status: str
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    reason: str = ""
    code: int = 0

    @property
    def ok(self) -> bool:
        return self.status in {"stored", "duplicate"}


def _failed(reason: str, code: int, parsed: ParsedInstance | None = None) -> StoreOutcome:
    outcome = StoreOutcome(status="failed", reason=reason, code=int(code))
    if parsed is not None:
        outcome.sop_class_uid = parsed.instance["sop_class_uid"]
        outcome.sop_instance_uid = parsed.sop_instance_uid
        outcome.study_instance_uid = parsed.study_instance_uid
        outcome.series_instance_uid = parsed.series_instance_uid
    return outcome


def _duplicate_outcome(parsed: ParsedInstance, key: str) -> StoreOutcome | None:
    """The outcome for a file stored under ``key`` whose SOP Instance UID turned out to be held already."""
    held = Instance.objects.filter(sop_instance_uid=parsed.sop_instance_uid).values_list(
        "sha256", "storage_key").first()
    if held is None:
        return None
    storage = get_storage()
    with storage.open(key) as new:
        return _same_or_conflict(parsed, _same_as_held(new, *held))


def _same_as_held(new: BinaryIO, held_sha: str, held_key: str) -> bool:
    """Whether ``new`` holds the data set of an indexed instance: by its SHA-256 when it was indexed with one,
    else by comparing the stored file."""
    if held_sha:
        return dataset_sha256_of(new) == held_sha
    try:
        with get_storage().open(held_key) as held:
            return same_dataset(new, held)
    except OSError:  # the held file is gone: it cannot be shown to be the same
        logger.exception("cannot read stored instance %s to compare a re-sent copy", held_key)
        return False


def _index_one(item: Item) -> StoreOutcome:
    """Index one stored file in its own transaction; on refusal its file is removed again."""
    parsed = item.parsed
    try:
        with transaction.atomic():
            index_batch([item])
    except IntegrityError:
        try:
            outcome = _duplicate_outcome(parsed, item.key)
        finally:
            get_storage().delete(item.key)
        return outcome or _failed(
            "The index refused the instance (a concurrent store of the same UIDs).",
            FailureReason.PROCESSING_FAILURE,
            parsed,
        )
    except DatabaseError as exc:  # a value the database refuses, a lock timeout: the sender may retry
        get_storage().delete(item.key)
        logger.exception("indexing %s failed", parsed.sop_instance_uid)
        return _failed(f"The index could not record the instance: {str(exc)[:200]}",
                       FailureReason.PROCESSING_FAILURE, parsed)
    except DicomError as exc:
        get_storage().delete(item.key)
        return _failed(exc.reason, exc.code, parsed)
    except BaseException:
        get_storage().delete(item.key)
        raise
    return _stored(parsed)


def _stored(parsed: ParsedInstance) -> StoreOutcome:
    return StoreOutcome(
        status="stored",
        sop_class_uid=parsed.instance["sop_class_uid"],
        sop_instance_uid=parsed.sop_instance_uid,
        study_instance_uid=parsed.study_instance_uid,
        series_instance_uid=parsed.series_instance_uid,
    )


def store_file(path: str | Path, *, expected_study_uid: str | None = None, consume: bool = False) -> StoreOutcome:
    """Parse, check, store and index one file. Never raises for bad input: the outcome says why it failed.

    ``consume``: the file is a staging file of the store and is moved (or removed when not stored);
    otherwise it is copied and left alone.
    """
    return store_files([path], expected_study_uid=expected_study_uid, consume=consume)[0]


def store_files(paths: list[str | Path], *, expected_study_uid: str | None = None, consume: bool = False,
                parse_in_processes: bool = False) -> list[StoreOutcome]:
    """:func:`store_file` for several files, outcomes in order. Each file succeeds or fails on its own, but they
    are indexed in one transaction with a few plain SQL statements per batch (:mod:`archive.index_sql`);
    when that transaction is refused, each instance is indexed on its own so that one bad instance fails alone.

    ``parse_in_processes``: parse in :mod:`archive.parse_pool`'s processes (the server's store workers), so
    concurrent stores use every core.
    """
    paths = [Path(p) for p in paths]
    try:
        return _store_files(paths, expected_study_uid, consume, parse_in_processes)
    finally:
        if consume:
            for path in paths:
                path.unlink(missing_ok=True)


def _store_files(paths: list[Path], expected_study_uid: str | None, consume: bool, parse_in_processes: bool,
                 ) -> list[StoreOutcome]:
    outcomes: list[StoreOutcome | None] = [None] * len(paths)
    checked: list[tuple[int, ParsedInstance]] = []
    # staging files that will be moved are made durable by the parse (in parallel, off this thread)
    results = check_files(paths, consume) if parse_in_processes else [check_file(p) for p in paths]
    synced = {n for n, result in enumerate(results) if result.synced}
    for n, result in enumerate(results):
        parsed = result.parsed
        if result.reason:
            outcomes[n] = _failed(result.reason, result.code, parsed)
        elif expected_study_uid and parsed.study_instance_uid != expected_study_uid:
            outcomes[n] = _failed(
                f"Instance belongs to study {parsed.study_instance_uid}, not {expected_study_uid} named in the URL.",
                FailureReason.STUDY_UID_MISMATCH,
                parsed,
            )
        else:
            checked.append((n, parsed))
    known = held_instances("default", [parsed.sop_instance_uid for _, parsed in checked])
    first: dict[str, int] = {}  # the same instance twice in one batch: the first one counts
    to_put: list[tuple[int, ParsedInstance]] = []
    for n, parsed in checked:
        uid = parsed.sop_instance_uid
        if (held := known.get(uid)) is not None:
            with open(paths[n], "rb") as new:
                outcomes[n] = _same_or_conflict(parsed, _same_as_held(new, *held))
        elif uid in first:
            with open(paths[n], "rb") as new, open(paths[first[uid]], "rb") as earlier:
                outcomes[n] = _same_or_conflict(parsed, same_dataset(new, earlier))
        else:
            first[uid] = n
            to_put.append((n, parsed))
    staged = _put_all(paths, to_put, consume, outcomes, synced)
    storage = get_storage()
    if len(staged) > 1:
        try:
            with transaction.atomic():
                index_batch([item for _, item in staged])
            for n, item in staged:
                outcomes[n] = _stored(item.parsed)
            staged = []
        except (DatabaseError, DicomError):
            pass  # one of them is refused: index them one by one below, so that it fails alone
        except BaseException:
            for _, item in staged:
                storage.delete(item.key)
            raise
    for position, (n, item) in enumerate(staged):
        try:
            outcomes[n] = _index_one(item)
        except BaseException:
            for _, rest in staged[position + 1:]:
                storage.delete(rest.key)
            raise
    return outcomes  # type: ignore[return-value]


def _put_all(paths: list[Path], to_put: list[tuple[int, ParsedInstance]], consume: bool,
             outcomes: list[StoreOutcome | None], synced: set[int]) -> list[tuple[int, Item]]:
    """Move the checked files into the store together (made durable in parallel, then renamed: a file is in the
    store before its index row exists, and durable before either; ``synced``: the positions of files already
    made durable by their parse). Failures go into ``outcomes``."""
    storage = get_storage()
    sources: list[Path | None] = []
    sizes: list[int] = []
    durable: list[bool] = []
    for n, parsed in to_put:
        try:
            sizes.append(paths[n].stat().st_size)
            sources.append(paths[n] if consume else _copy_to_staging(paths[n]))
            durable.append(consume and n in synced)
        except OSError as exc:
            logger.exception("storage failure for %s", paths[n])
            outcomes[n] = _failed(f"The archive could not write the file: {exc.strerror or exc}",
                                  FailureReason.OUT_OF_RESOURCES, parsed)
            sizes.append(0)
            sources.append(None)
            durable.append(False)
    ready = [(i, src) for i, src in enumerate(sources) if src is not None]
    keys = storage.put_many([src for _, src in ready], synced=[durable[i] for i, _ in ready])
    staged: list[tuple[int, Item]] = []
    for (i, _src), key in zip(ready, keys, strict=True):
        n, parsed = to_put[i]
        if isinstance(key, OSError):
            logger.error("storage failure for %s: %s", paths[n], key)
            outcomes[n] = _failed(f"The archive could not write the file: {key.strerror or key}",
                                  FailureReason.OUT_OF_RESOURCES, parsed)
            continue
        staged.append((n, Item(parsed, key, sizes[i])))
    return staged


def _same_or_conflict(parsed: ParsedInstance, same: bool) -> StoreOutcome:
    if same:
        return StoreOutcome(
            status="duplicate",
            sop_class_uid=parsed.instance["sop_class_uid"],
            sop_instance_uid=parsed.sop_instance_uid,
            study_instance_uid=parsed.study_instance_uid,
            series_instance_uid=parsed.series_instance_uid,
        )
    return _failed(
        f"SOP Instance UID {parsed.sop_instance_uid} is already stored with different content; "
        "the archive keeps the first copy (delete it first to replace it).",
        FailureReason.DUPLICATE_SOP_INSTANCE,
        parsed,
    )


def _copy_to_staging(path: Path) -> Path:
    fp, staged = get_storage().new_staging_file()
    with fp, open(path, "rb") as src:
        while chunk := src.read(1 << 20):
            fp.write(chunk)
    return staged


def notify_stored(outcomes: list[StoreOutcome]) -> None:
    """After a batch: one ``study.stored`` event per study, and the ``instances_stored`` signal."""
    stored = [o for o in outcomes if o.status == "stored"]
    if not stored:
        return
    by_study: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for o in stored:
        by_study[o.study_instance_uid][o.series_instance_uid] += 1
    for study_uid, series in by_study.items():
        publish(Event.STUDY_STORED, study_uid, {"series": dict(series), "instances": sum(series.values())})
    try:
        instances_stored.send(sender=Instance, outcomes=stored)
    except Exception:
        logger.exception("an instances_stored receiver failed")
