"""The Celery app. Embedded mode: in-memory broker, worker thread in the serve process. Production: Redis."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lightbox.settings")

app = Celery("lightbox")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
