"""Registry parsing, network loading from local files in three formats, and import hygiene (no Django)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from inference.errors import ModelRegistryError
from inference.registry import get_model_spec, instantiate, load_network, load_registry

ROOT = Path(__file__).resolve().parents[2]


def test_registry_lists_both_models_with_what_they_accept():
    specs = load_registry()
    assert {"chest-ct-nodules", "cxr-nodule-classifier"} <= set(specs)
    ct = specs["chest-ct-nodules"]
    assert ct.accepts("CT", "CHEST") == (True, "")
    ok, reason = ct.accepts("MR")
    assert not ok and "reads CT" in reason
    assert ct.weights is not None and ct.weights.parent.name == "weights"
    with pytest.raises(ModelRegistryError, match="unknown model"):
        get_model_spec("no-such-model")


def test_instantiate_refuses_targets_outside_the_allow_list():
    with pytest.raises(ModelRegistryError, match="not allowed"):
        instantiate({"_target_": "os.system", "command": "true"})
    with pytest.raises(ModelRegistryError, match="failed to instantiate"):
        instantiate({"_target_": "monai.networks.nets.UNet", "spatial_dims": 3})


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit is deprecated but still what ships
def test_weights_load_as_state_dict_torchscript_and_bundle(tmp_path):
    spec = get_model_spec("cxr-nodule-classifier")
    net = instantiate(spec.network).eval()
    x = torch.randn(1, 2, 64, 64)
    with torch.inference_mode():
        expected = net(x)
    torch.save(net.state_dict(), tmp_path / "w.pt")
    torch.jit.save(torch.jit.trace(net, x), tmp_path / "w.ts")
    bundle = tmp_path / "bundle"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "models").mkdir()
    cfg = {"network_def": dict(spec.network)}
    (bundle / "configs" / "inference.json").write_text(json.dumps(cfg))
    torch.save(net.state_dict(), bundle / "models" / "model.pt")
    from dataclasses import replace

    for fmt, path in (
        ("state_dict", tmp_path / "w.pt"),
        ("torchscript", tmp_path / "w.ts"),
        ("bundle", bundle),
    ):
        loaded = load_network(replace(spec, weights_format=fmt), weights=path)
        with torch.inference_mode():
            torch.testing.assert_close(loaded(x), expected)
    with pytest.raises(ModelRegistryError, match="python -m inference.train"):
        load_network(spec, weights=tmp_path / "missing.pt")
    bad = instantiate(get_model_spec("chest-ct-nodules").network)
    torch.save(bad.state_dict(), tmp_path / "bad.pt")
    with pytest.raises(ModelRegistryError, match="do not fit"):
        load_network(spec, weights=tmp_path / "bad.pt")


def test_inference_imports_without_django():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = (
        "import sys, pkgutil, importlib, inference\n"
        "names = [m.name for m in pkgutil.walk_packages(inference.__path__, 'inference.')"
        " if not m.name.endswith('.tasks') and not m.name.endswith('__main__')]\n"
        "[importlib.import_module(n) for n in names]\n"
        "assert 'django' not in sys.modules, 'inference imported django'\n"
        "print(len(names))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) >= 15
    src = "\n".join(p.read_text() for p in (ROOT / "inference").rglob("*.py") if p.name != "tasks.py")
    assert "import django" not in src and "from django" not in src
