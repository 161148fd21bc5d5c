"""The models learn: a short training run beats the untrained net (small phantoms, small nets, < 60 s)."""

from __future__ import annotations

import torch
from monai.networks.nets import UNet

from inference.metrics import dice
from inference.models import NoduleClassifier2D
from inference.phantoms.types import CT_LABELS
from inference.pipelines.inferer import VolumeInferer
from inference.pipelines.transforms import hu_to_channels
from inference.train.cls import ClsTrainConfig, make_cxr_set, train_classifier
from inference.train.seg import SegTrainConfig, train_segmentation
from inference.train.seg_data import make_model_grid_phantom


def _lung_dice(net, phantom) -> float:
    with torch.inference_mode():
        probs = VolumeInferer(roi_depth=32, divisor=8)(hu_to_channels(phantom.volume)[None], net)[0]
    return dice(probs.argmax(0).numpy() == CT_LABELS["lung"], phantom.labels == CT_LABELS["lung"])


def test_segmentation_training_improves_dice():
    torch.manual_seed(0)
    net = UNet(3, 2, 4, channels=(8, 16, 32), strides=(2, 2), num_res_units=0, norm="batch")
    held_out = make_model_grid_phantom(900_123, spacing_mm=4.0, noise_sigma=8.0, full_fov=True)
    before = _lung_dice(net.eval(), held_out)
    cfg = SegTrainConfig(
        steps=40,
        batch_size=2,
        patch=(32, 48, 48),
        lr=1e-2,
        pool_size=3,
        refresh_every=0,
        spacing_mm=4.0,
        log_every=40,
    )
    train_segmentation(net, cfg, log=lambda _msg: None)
    after = _lung_dice(net.eval(), held_out)
    assert after > before + 0.3, f"lung Dice {before:.2f} -> {after:.2f}"
    assert after > 0.6


def test_classifier_training_fits_a_small_set():
    torch.manual_seed(0)
    net = NoduleClassifier2D(channels=(8, 8, 16, 16))
    x, y, _ = make_cxr_set(list(range(16)), size=64)

    def loss() -> float:
        net.eval()
        with torch.inference_mode():
            return float(torch.nn.functional.binary_cross_entropy_with_logits(net(x)[:, 0], y))

    before = loss()
    cfg = ClsTrainConfig(steps=25, batch_size=16, n_train=16, size=64, lr=1e-2, log_every=25)
    train_classifier(net, cfg, log=lambda _m: None)
    assert loss() < before


def test_refiner_training_fits_nodule_patches():
    """The second stage learns too: after a few steps its mask overlaps the nodules at the patch centres."""
    from inference.pipelines.refine import NoduleRefiner
    from inference.train.refine import RefineTrainConfig, make_refine_patches, train_refiner

    torch.manual_seed(0)
    net = UNet(3, 1, 1, channels=(8, 16, 32), strides=(2, 2), num_res_units=0, norm="batch")
    cfg = RefineTrainConfig(steps=40, batch_size=4, n_phantoms=2, phantom_shape=(64, 192, 192), patch_size=24,
                            patch_spacing_mm=1.2, lr=1e-2, log_every=40)
    hu, lab, flags = make_refine_patches(range(cfg.seed_start, cfg.seed_start + cfg.n_phantoms), cfg,
                                         log=lambda _m: None)
    refiner = NoduleRefiner(net, patch_size=cfg.patch_size, patch_spacing_mm=cfg.patch_spacing_mm,
                            window=cfg.window)
    x = hu_to_channels(hu.float(), [cfg.window]).transpose(0, 1)

    def nodule_dice() -> float:
        net.eval()
        probs = refiner.predict(x).numpy()
        return dice(probs[flags.numpy()] >= 0.5, lab[flags].numpy() > 0)

    before = nodule_dice()
    train_refiner(net, cfg, log=lambda _m: None)
    after = nodule_dice()
    assert after > before + 0.2 and after > 0.4, f"refiner nodule Dice {before:.2f} -> {after:.2f}"
