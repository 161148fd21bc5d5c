"""Networks as plain ``nn.Module`` s built from hyper-parameters; no pre- or post-processing here."""

from inference.models.cxr_classifier import NoduleClassifier2D

__all__ = ["NoduleClassifier2D"]
