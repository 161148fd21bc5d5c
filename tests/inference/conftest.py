"""Fixtures for the inference tests. No Django: run with ``-p no:django`` or without the plugin at all."""

from __future__ import annotations

import numpy as np
import pytest
import torch

torch.set_num_threads(2)

#: A chest CT at the demo spacing but a quarter of the voxels, so tests run in seconds.
SMALL_CT_SHAPE = (120, 320, 320)


@pytest.fixture(scope="session")
def small_ct():
    from inference.phantoms import make_chest_ct

    return make_chest_ct(11, shape=SMALL_CT_SHAPE, n_nodules=3, nodule_diameter_range=(6.0, 16.0))


@pytest.fixture(scope="session")
def small_ct_series(small_ct, tmp_path_factory):
    from inference.phantoms import write_ct_series

    out = tmp_path_factory.mktemp("ct")
    paths = write_ct_series(
        small_ct, out, patient_name="Phantom^Test", patient_id="T1", accession_number="ACC1"
    )
    return small_ct, paths


@pytest.fixture(scope="session")
def rng():
    return np.random.default_rng(0)
