"""System checks for the archive's settings."""
from django.core import checks

from lightbox.conf import lightbox_setting


@checks.register()
def storage_backend_importable(app_configs, **kwargs):
    from django.utils.module_loading import import_string

    path = lightbox_setting("STORAGE_BACKEND")
    try:
        import_string(path)
    except ImportError as exc:
        return [checks.Error(f"LIGHTBOX['STORAGE_BACKEND'] = {path!r} cannot be imported: {exc}", id="archive.E001")]
    return []


@checks.register()
def ae_title_valid(app_configs, **kwargs):
    ae = lightbox_setting("DICOM_AE_TITLE")
    if not ae or len(ae) > 16 or not ae.isascii() or "\\" in ae:
        return [checks.Error(f"DICOM AE title {ae!r} must be 1-16 ASCII characters without '\\'.", id="archive.E002")]
    return []
