"""The model registry: which models exist, what they accept, how to build and load them.

``registry.yaml`` declares each model (task, modalities, body parts, architecture with ``_target_``, weights,
pre/post-processing). Networks are instantiated from that config and weights come from local files only:
a state dict, a TorchScript file or a MONAI bundle folder. Nothing is downloaded.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from inference.errors import ModelRegistryError

__all__ = [
    "ModelSpec",
    "load_registry",
    "get_model_spec",
    "instantiate",
    "load_network",
    "DEFAULT_REGISTRY",
    "ALLOWED_TARGET_PREFIXES",
]

DEFAULT_REGISTRY = Path(__file__).with_name("registry.yaml")
#: ``_target_`` may only name callables under these module prefixes: the registry is configuration, not code.
ALLOWED_TARGET_PREFIXES: tuple[str, ...] = (
    "monai.networks.",
    "inference.models.",
    "inference.pipelines.",
    "torch.nn.",
)
_WEIGHTS_FORMATS = ("state_dict", "torchscript", "bundle")
_COMPONENT_KEYS = ("refiner",)


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry. ``root`` is the folder relative paths are resolved against."""

    name: str
    task: str
    version: str
    modalities: tuple[str, ...]
    body_parts: tuple[str, ...]
    network: Mapping[str, Any]
    weights: Path | None
    weights_format: str
    pipeline: Mapping[str, Any]
    title: str = ""
    sop_classes: tuple[str, ...] = ()
    labels: Mapping[str, int] = field(default_factory=dict)
    preprocessing: Mapping[str, Any] = field(default_factory=dict)
    inference: Mapping[str, Any] = field(default_factory=dict)
    postprocessing: Mapping[str, Any] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    components: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def component(self, name: str) -> ModelSpec:
        """A secondary network of this model (e.g. ``"refiner"``) as a spec of its own."""
        if name not in self.components:
            raise ModelRegistryError(
                f"model {self.name!r} has no component {name!r}; it has {sorted(self.components)}."
            )
        c = self.components[name]
        return replace(
            self,
            name=f"{self.name}/{name}",
            network=dict(c["network"]),
            weights=c.get("weights"),
            weights_format=c.get("weights_format", "state_dict"),
            components={},
        )

    def accepts(self, modality: str, body_part: str | None = None) -> tuple[bool, str]:
        """(ok, reason), pynetdicom-validator style: the caller decides what to do with a refusal."""
        if modality not in self.modalities:
            return (
                False,
                f"model {self.name!r} reads {'/'.join(self.modalities)} images, this series is {modality or 'of unknown modality'}",
            )
        if body_part is not None and self.body_parts and body_part.upper() not in self.body_parts:
            return (
                False,
                f"model {self.name!r} is for {'/'.join(p for p in self.body_parts if p)}, this series is {body_part!r}",
            )
        return True, ""

    def build_pipeline(self, **overrides: Any):
        """Instantiate this model's pipeline class with the spec (networks load lazily inside)."""
        return instantiate(self.pipeline, spec=self, **overrides)


def _check_target(target: str) -> None:
    if not isinstance(target, str) or not target.startswith(ALLOWED_TARGET_PREFIXES):
        raise ModelRegistryError(
            f"_target_ {target!r} is not allowed; use a class under one of {ALLOWED_TARGET_PREFIXES}."
        )


def instantiate(config: Mapping[str, Any], **overrides: Any) -> Any:
    """Call ``config['_target_']`` with the remaining keys (and ``overrides``), as MONAI's ConfigComponent does;
    any failure becomes a :class:`ModelRegistryError` naming the target."""
    if "_target_" not in config:
        raise ModelRegistryError(f"config has no _target_: {dict(config)!r}")
    target = config["_target_"]
    _check_target(target)
    module_name, _, attr = target.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
        kwargs = {k: v for k, v in config.items() if not k.startswith("_")}
        kwargs.update(overrides)
        return obj(**kwargs)
    except ModelRegistryError:
        raise
    except Exception as exc:
        raise ModelRegistryError(f"failed to instantiate {target}: {type(exc).__name__}: {exc}") from exc


def load_registry(path: str | Path = DEFAULT_REGISTRY) -> dict[str, ModelSpec]:
    """Parse and check the registry file; errors name the model and the key to fix."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ModelRegistryError(f"cannot read model registry {path}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), dict):
        raise ModelRegistryError(f"{path} must hold a mapping with a 'models' mapping.")
    specs: dict[str, ModelSpec] = {}
    for name, entry in raw["models"].items():
        missing = [k for k in ("task", "modalities", "network", "pipeline") if k not in entry]
        if missing:
            raise ModelRegistryError(f"model {name!r} in {path} lacks {missing}.")
        fmt = entry.get("weights_format", "state_dict")
        if fmt not in _WEIGHTS_FORMATS:
            raise ModelRegistryError(
                f"model {name!r}: weights_format must be one of {_WEIGHTS_FORMATS}, got {fmt!r}."
            )
        weights = entry.get("weights")
        specs[name] = ModelSpec(
            name=name,
            task=str(entry["task"]),
            version=str(entry.get("version", "0")),
            title=str(entry.get("title", name)),
            modalities=tuple(entry["modalities"]),
            body_parts=tuple(str(p).upper() for p in entry.get("body_parts", ())),
            sop_classes=tuple(entry.get("sop_classes", ())),
            network=dict(entry["network"]),
            weights=(path.parent / weights) if weights else None,
            weights_format=fmt,
            pipeline=dict(entry["pipeline"]),
            labels=dict(entry.get("labels", {})),
            preprocessing=dict(entry.get("preprocessing", {})),
            inference=dict(entry.get("inference", {})),
            postprocessing=dict(entry.get("postprocessing", {})),
            outputs=tuple(entry.get("outputs", ())),
            components={
                key: {**value, "weights": (path.parent / value["weights"]) if value.get("weights") else None}
                for key, value in entry.items()
                if key in _COMPONENT_KEYS
            },
        )
    return specs


def get_model_spec(name: str, path: str | Path = DEFAULT_REGISTRY) -> ModelSpec:
    specs = load_registry(path)
    if name not in specs:
        raise ModelRegistryError(f"unknown model {name!r}; the registry {path} has {sorted(specs)}.")
    return specs[name]


def _load_bundle(folder: Path) -> nn.Module:
    from monai.bundle import ConfigParser

    config = folder / "configs" / "inference.json"
    weights = folder / "models" / "model.pt"
    if not config.is_file() or not weights.is_file():
        raise ModelRegistryError(f"MONAI bundle {folder} needs configs/inference.json and models/model.pt.")
    parser = ConfigParser()
    parser.read_config(str(config))
    parser["bundle_root"] = str(folder)
    net_cfg = parser.get("network_def")
    if isinstance(net_cfg, dict) and "_target_" in net_cfg:
        _check_target(_expand_monai_target(net_cfg["_target_"]))
    try:
        net = parser.get_parsed_content("network_def")
    except Exception as exc:
        raise ModelRegistryError(f"bundle {folder}: cannot build network_def: {exc}") from exc
    _load_state_dict(net, weights)
    return net


def _expand_monai_target(target: str) -> str:
    """Bundles may write a bare class name (``UNet``) that MONAI resolves among its networks."""
    return target if "." in target else f"monai.networks.nets.{target}"


def _load_state_dict(net: nn.Module, weights: Path) -> None:
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelRegistryError(f"cannot read weights {weights}: {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelRegistryError(f"weights {weights} do not fit the network config: {exc}") from exc


def load_network(
    spec: ModelSpec, *, weights: str | Path | None = None, strict_weights: bool = True
) -> nn.Module:
    """Build ``spec.network`` and load its weights (or ``weights``), in eval mode on the CPU.

    Without a weights file and ``strict_weights=False`` the network keeps its random initialisation (tests,
    first training run); otherwise a missing file raises with the command that creates it.
    """
    path = Path(weights) if weights is not None else spec.weights
    if spec.weights_format == "bundle":
        if path is None or not path.is_dir():
            raise ModelRegistryError(f"model {spec.name!r}: bundle folder {path} not found.")
        return _load_bundle(path).eval()
    if spec.weights_format == "torchscript":
        if path is None or not path.is_file():
            raise ModelRegistryError(f"model {spec.name!r}: TorchScript file {path} not found.")
        return torch.jit.load(str(path), map_location="cpu").eval()
    net = instantiate(spec.network)
    if path is None or not path.is_file():
        if strict_weights:
            raise ModelRegistryError(
                f"model {spec.name!r}: weights {path} not found; run `python -m inference.train` to create them."
            )
        return net.eval()
    _load_state_dict(net, path)
    return net.eval()


def describe(specs: Mapping[str, ModelSpec]) -> str:
    """A JSON listing for humans and the admin UI."""
    return json.dumps(
        {
            n: {"task": s.task, "modalities": s.modalities, "version": s.version, "title": s.title}
            for n, s in specs.items()
        },
        indent=2,
    )
