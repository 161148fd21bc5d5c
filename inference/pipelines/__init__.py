"""Pipelines: DICOM loading, transforms, the sliding-window inferer, post-processing and DICOM result writers.

Submodules import torch, MONAI or highdicom; import them directly (``inference.pipelines.chest_ct``) so that
``import inference.pipelines`` stays cheap.
"""

__all__: list[str] = []
