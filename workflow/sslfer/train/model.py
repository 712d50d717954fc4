"""The encoder being pretrained: a torchvision ResNet from scratch plus the reference's projection head."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torchvision
from torch import nn

BACKBONES = ("resnet18", "resnet34", "resnet50")


def make_backbone(name: str) -> tuple[nn.Module, int]:
    """A randomly initialised torchvision ResNet with ``fc = Identity`` and its feature size."""
    if name not in BACKBONES:
        raise ValueError(f"config pretrain.backbone: unknown backbone {name!r} (one of {', '.join(BACKBONES)})")
    net = getattr(torchvision.models, name)(weights=None)
    dim = net.fc.in_features
    net.fc = nn.Identity()
    return net, dim


class ContrastiveModel(nn.Module):
    """Backbone → (the downstream feature) → projection head Linear–ReLU–Linear (the reference's)."""

    def __init__(self, backbone: str = "resnet18", projection_dim: int = 128) -> None:
        super().__init__()
        self.backbone, self.feature_dim = make_backbone(backbone)
        self.head = nn.Sequential(nn.Linear(self.feature_dim, self.feature_dim), nn.ReLU(inplace=True),
                                  nn.Linear(self.feature_dim, projection_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def save_encoder(path: str | Path, model: ContrastiveModel, backbone: str, record: dict) -> Path:
    """Write ``encoder.pt`` atomically: the backbone's state dict, its name and feature size, plus ``record``
    (the training config, the workflow config that made it, steps)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    torch.save({"backbone": model.backbone.state_dict(), "backbone_name": backbone,
                "feature_dim": model.feature_dim, **record}, tmp)
    os.replace(tmp, path)
    return path


def random_encoder(path: str | Path, backbone: str, seed: int, config: dict) -> Path:
    """The floor of the ablation: an untrained encoder (torchvision's initialisation with ``seed``)."""
    torch.manual_seed(seed)
    return save_encoder(path, ContrastiveModel(backbone), backbone, {"config": config, "steps": 0, "train_config": None})


def load_encoder(path: str, map_location: str = "cpu") -> tuple[nn.Module, dict]:
    """The backbone saved in ``encoder.pt`` (eval mode) and the record that came with it."""
    record = torch.load(path, map_location=map_location, weights_only=False)
    net, _ = make_backbone(record["backbone_name"])
    net.load_state_dict(record["backbone"])          # strict: a key mismatch is an error, not a silent skip
    return net.eval(), record
