from django.apps import AppConfig


class ViewerConfig(AppConfig):
    name = "viewer"
    verbose_name = "Viewer"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
