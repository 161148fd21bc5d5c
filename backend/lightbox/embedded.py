"""Embedded mode: the Celery worker runs as a thread of the web process, on the in-memory broker.

Production runs ``celery -A lightbox worker`` as its own process instead; the task code is the same.
"""
from __future__ import annotations

import logging
import threading

logger = logging.getLogger(__name__)

#: Seconds the in-memory broker sleeps between polls of an empty queue (kombu's default, 1 s, is what a job
#: waited on average half of before the worker picked it up). An idle poll costs microseconds.
POLLING_INTERVAL = 0.05


def start_worker_thread(queues: tuple[str, ...] = ("cpu", "gpu"), concurrency: int = 1):
    """Start a Celery worker consuming ``queues`` in a daemon thread; return the worker (``.stop()`` ends it)."""
    from celery import signals

    from lightbox.celery import app

    if not app.conf.broker_url.startswith("memory://"):
        raise RuntimeError("An embedded worker needs the in-memory broker; with REDIS_URL run `celery worker`.")
    app.loader.import_default_modules()
    app.conf.broker_transport_options = {**(app.conf.broker_transport_options or {}),
                                         "polling_interval": POLLING_INTERVAL}
    worker = app.WorkController(
        pool_cls="threads",
        concurrency=concurrency,
        queues=list(queues),
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        hostname="embedded@lightbox",
        loglevel="INFO",
        # as `celery worker` does, so worker_ready handlers (analysis warms its models) run here too
        ready_callback=lambda consumer: signals.worker_ready.send(sender=consumer),
    )
    thread = threading.Thread(target=worker.start, name="celery-embedded", daemon=True)
    thread.start()
    logger.info("embedded Celery worker started on queues %s", ", ".join(queues))
    return worker
