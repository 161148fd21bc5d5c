"""Deterministic UIDs for the demo studies, so reloading is idempotent and tests can find them."""
from pydicom.uid import generate_uid

DEMO_ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's UID root, used with fixed entropy sources


def demo_uid(*parts: str) -> str:
    return generate_uid(DEMO_ROOT, entropy_srcs=["lightbox-demo", *parts])


CT_STUDY = demo_uid("ct-chest", "study")
MR_STUDY = demo_uid("mr-brain", "study")
CR_STUDY = demo_uid("cr-chest", "study")
