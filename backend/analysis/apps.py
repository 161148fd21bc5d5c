from django.apps import AppConfig


class AnalysisConfig(AppConfig):
    name = "analysis"
    verbose_name = "AI analyses of studies"

    def ready(self) -> None:
        from events import snapshots

        from . import rules  # noqa: F401  (signal receivers)
        from .jobs import study_snapshot

        snapshots.register("analysis", study_snapshot)
