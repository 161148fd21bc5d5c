from django.apps import AppConfig


class ArchiveConfig(AppConfig):
    name = "archive"
    verbose_name = "DICOM archive (DICOMweb, C-STORE)"

    def ready(self) -> None:
        from . import checks  # noqa: F401
