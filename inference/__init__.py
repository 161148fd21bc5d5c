"""Lightbox inference: phantoms, models, pipelines and DICOM result writers.

Importable without Django. Heavy submodules (torch, MONAI, highdicom) load only when used, so
``import inference`` stays cheap for the web process.
"""

from inference.errors import InferenceCancelled, InferenceError, InferenceInputError

__all__ = ["InferenceError", "InferenceInputError", "InferenceCancelled"]
__version__ = "0.1.0"
