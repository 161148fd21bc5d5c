"""``manage.py analysis_rules``: list the automatic-analysis rules, or install the default ones."""
from __future__ import annotations

from django.core.management.base import BaseCommand

from analysis.models import AutoRule

DEFAULT_RULES = [
    {"name": "ct-chest-nodules", "modality": "CT", "body_part_examined": "CHEST", "min_instances": 20,
     "model_name": "chest-ct-nodules"},
    {"name": "cr-chest-nodule", "modality": "CR", "body_part_examined": "", "min_instances": 1,
     "model_name": "cxr-nodule-classifier"},
    {"name": "dx-chest-nodule", "modality": "DX", "body_part_examined": "", "min_instances": 1,
     "model_name": "cxr-nodule-classifier"},
]


class Command(BaseCommand):
    help = "Show the rules that start analyses on ingest; --defaults installs CT chest -> nodules, CR/DX -> classifier."

    def add_arguments(self, parser):
        parser.add_argument("--defaults", action="store_true", help="create the default rules (kept if present)")
        parser.add_argument("--disable-all", action="store_true")

    def handle(self, *args, defaults: bool, disable_all: bool, **opts):
        if defaults:
            for rule in DEFAULT_RULES:
                AutoRule.objects.get_or_create(name=rule["name"], defaults=rule)
        if disable_all:
            AutoRule.objects.update(enabled=False)
        for rule in AutoRule.objects.order_by("name"):
            self.stdout.write(f"{'on ' if rule.enabled else 'off'} {rule}")
