"""The DICOM C-STORE and C-ECHO SCP (pynetdicom): modalities and PACS push instances here.

Each received data set is written as received (preamble, file meta, the encoded data set: no re-encoding) to a
staging file and stored through :func:`archive.ingest.store_file`, like STOW-RS and import. Storing runs in the
archive's few long-lived store workers (:mod:`archive.store_workers`) rather than in pynetdicom's
per-association threads, so database connections are reused and never leak with a finished association.
Stored instances are announced (``notify_stored``) when the association ends, however it ends, and every
``FLUSH_EVERY`` instances during a long one. See docs/conformance/stow.md for the status policy.
"""
from __future__ import annotations

import logging
import threading
from collections import Counter
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.filewriter import write_file_meta_info
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer

from lightbox.conf import lightbox_setting

from .dicom import FailureReason
from .dicom.parse import SUPPORTED_PIXEL_TRANSFER_SYNTAXES
from .ingest import StoreOutcome, notify_stored
from .storage import get_storage
from .store_workers import run_in_worker, store_one

logger = logging.getLogger(__name__)

SUCCESS = 0x0000
FLUSH_EVERY = 200  # announce progress of long associations, so viewers see studies fill in
MAX_ASSOCIATIONS = 32
# The transfer syntaxes the archive can index, in the order pynetdicom prefers them; a sender with
# anything else is told at negotiation time, not after sending the data.
TRANSFER_SYNTAXES = sorted(SUPPORTED_PIXEL_TRANSFER_SYNTAXES, key=lambda ts: (ts != "1.2.840.10008.1.2.1", ts))


def c_store_status(outcome: StoreOutcome) -> int:
    """The C-STORE response status of an outcome: 0000 stored or same bytes already held, else the failure code.

    The failure codes are PS3.4 B.2.3 statuses (A700 out of resources, A900 data set does not match SOP class,
    C000 cannot understand, C122 transfer syntax not supported) or PS3.7 general ones (0110 processing failure,
    0111 duplicate SOP instance with different content, 0122 SOP class not supported).
    """
    return SUCCESS if outcome.ok else int(outcome.code or FailureReason.PROCESSING_FAILURE)


class StoreService:
    """Event handlers of one SCP: stores data sets, keeps each association's outcomes until it ends."""

    def __init__(self) -> None:
        self._pending: dict[object, list[StoreOutcome]] = {}
        self._lock = threading.Lock()

    @property
    def handlers(self) -> list[tuple]:
        return [
            (evt.EVT_C_STORE, self.on_c_store),
            (evt.EVT_RELEASED, self.on_association_end),
            (evt.EVT_ABORTED, self.on_association_end),
            (evt.EVT_CONN_CLOSE, self.on_association_end),
        ]

    def on_c_store(self, event: evt.Event) -> Dataset | int:
        try:
            path = _write_staging_file(event)
        except OSError as exc:
            logger.exception("C-STORE: cannot write a staging file")
            return _status(FailureReason.OUT_OF_RESOURCES, f"Cannot write: {exc.strerror or exc}")
        except Exception as exc:  # a data set pynetdicom could not give us, a bad file meta
            return _status(FailureReason.CANNOT_UNDERSTAND, str(exc))
        outcome = store_one(path)
        flush = None
        with self._lock:
            pending = self._pending.setdefault(event.assoc, [])
            pending.append(outcome)
            if sum(o.status == "stored" for o in pending) >= FLUSH_EVERY:
                flush = self._pending.pop(event.assoc)
        if flush:
            self._announce(flush, event.assoc)
        status = c_store_status(outcome)
        if status != SUCCESS:
            logger.info("C-STORE from %s refused %s: %s", _calling_ae(event.assoc), outcome.sop_instance_uid,
                        outcome.reason)
            return _status(status, outcome.reason)
        return SUCCESS

    def on_association_end(self, event: evt.Event) -> None:
        """Released, aborted or connection closed: whichever comes first announces what was stored."""
        with self._lock:
            ended = [(event.assoc, self._pending.pop(event.assoc, None))]
            # an association whose connection dropped while it was storing: its thread is gone by now
            ended += [(a, self._pending.pop(a)) for a in list(self._pending) if not getattr(a, "is_alive", bool)()]
        for assoc, outcomes in ended:
            if outcomes:
                self._announce(outcomes, assoc)

    def _announce(self, outcomes: list[StoreOutcome], assoc) -> None:
        run_in_worker(_notify_and_audit, outcomes, _calling_ae(assoc), _peer(assoc))

    def close(self) -> None:
        """Announce what is still pending (after the server has stopped) and wait for it."""
        with self._lock:
            remaining = list(self._pending.items())
            self._pending.clear()
        for assoc, outcomes in remaining:
            run_in_worker(_notify_and_audit, outcomes, _calling_ae(assoc), _peer(assoc)).result()


def _status(code: int, reason: str) -> Dataset:
    status = Dataset()
    status.Status = int(code)
    status.ErrorComment = reason.replace("\\", "/")[:64]  # LO: at most 64 characters
    return status


def _calling_ae(assoc) -> str:
    try:
        return str(assoc.requestor.ae_title).strip()
    except AttributeError:
        return ""


def _peer(assoc) -> str:
    try:
        return str(assoc.requestor.address)
    except AttributeError:
        return ""


def _write_staging_file(event: evt.Event) -> Path:
    """Preamble, file meta and the data set exactly as it was received."""
    meta = event.file_meta
    if calling := _calling_ae(event.assoc):
        meta.SourceApplicationEntityTitle = calling
    fp, path = get_storage().new_staging_file()
    try:
        with fp:
            fp.write(b"\x00" * 128 + b"DICM")
            write_file_meta_info(fp, meta, enforce_standard=True)
            fp.write(event.request.DataSet.getbuffer())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _notify_and_audit(outcomes: list[StoreOutcome], calling_ae: str, peer: str) -> None:
    try:
        notify_stored(outcomes)
    except Exception:
        logger.exception("C-STORE: notify_stored failed")
    from audit.log import record

    stored: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for o in outcomes:
        (stored if o.ok else failed)[o.study_instance_uid] += 1
    for study_uid in sorted(set(stored) | set(failed)):
        record(None, "cstore.store", study_instance_uid=study_uid,
               outcome="success" if not failed[study_uid] else ("partial" if stored[study_uid] else "failure"),
               stored=stored[study_uid], failed=failed[study_uid], calling_ae=calling_ae, peer=peer)


def build_ae(ae_title: str) -> AE:
    """An AE that accepts Verification and every storage SOP class pynetdicom knows, in each indexable syntax."""
    ae = AE(ae_title=ae_title)
    ae.maximum_associations = MAX_ASSOCIATIONS
    ae.maximum_pdu_size = 0  # no limit: senders may use large PDUs (fewer round trips per instance)
    allowed = [a for a in lightbox_setting("DICOM_ALLOWED_AES") if a]
    if allowed:
        ae.require_calling_aet = allowed
    ae.add_supported_context(Verification)
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, TRANSFER_SYNTAXES)
    return ae


def start_scp(ae_title: str, host: str, port: int) -> ThreadedAssociationServer:
    """Listen for associations in the background; ``.shutdown()`` stops listening and flushes notifications."""
    service = StoreService()
    server = build_ae(ae_title).start_server((host, port), block=False, evt_handlers=service.handlers)
    stop_server = server.shutdown

    def shutdown() -> None:
        stop_server()
        service.close()

    server.shutdown = shutdown  # type: ignore[method-assign]
    return server
