"""The encoder being pretrained: a torchvision ResNet from scratch plus the reference's projection head."""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn
from ..files import atomic_path

BACKBONES = ("resnet18", "resnet34", "resnet50")
#: How the stem reduces the input before the first residual stage: ``imagenet`` is torchvision's
#: (7×7 convolution, stride 2, then 3×3 max-pool, stride 2: ÷4); ``no_maxpool`` keeps the 7×7/2 convolution
#: and drops the max-pool (÷2); ``cifar`` is a 3×3 convolution, stride 1, no max-pool (÷1). At 64 px the
#: ImageNet stem leaves a 2×2 map after the last stage.
STEMS = ("imagenet", "no_maxpool", "cifar")


def _reinit(net: nn.Module) -> None:
    """torchvision's ResNet initialisation (He-normal convolutions, BatchNorm weight 1 and bias 0)."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)


def make_backbone(name: str, width: int = 64, stem: str = "imagenet") -> tuple[nn.Module, int]:
    """A randomly initialised torchvision ResNet with ``fc = Identity`` and its feature size. ``width`` is the
    first stage's channel count (torchvision's is 64; the stages double it), ``stem`` one of :data:`STEMS`.
    With the defaults it is exactly torchvision's network; otherwise torchvision's own blocks are rebuilt at
    that width, so parameter names stay torchvision's."""
    if name not in BACKBONES:
        raise ValueError(f"config pretrain.backbone: unknown backbone {name!r} (one of {', '.join(BACKBONES)})")
    if stem not in STEMS:
        raise ValueError(f"config pretrain.stem: unknown stem {stem!r} (one of {', '.join(STEMS)})")
    if width < 8:
        raise ValueError(f"config pretrain.width: {width} is too narrow (at least 8)")
    net = getattr(torchvision.models, name)(weights=None)
    if width != 64 or stem != "imagenet":
        block = type(net.layer1[0])
        net.inplanes = width
        if stem == "cifar":
            net.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
        else:
            net.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        net.bn1 = nn.BatchNorm2d(width)
        if stem != "imagenet":
            net.maxpool = nn.Identity()
        depth = [len(getattr(net, f"layer{k}")) for k in range(1, 5)]
        for k in range(4):
            setattr(net, f"layer{k + 1}", net._make_layer(block, width * 2 ** k, depth[k], stride=1 if k == 0 else 2))
        net.fc = nn.Linear(width * 8 * block.expansion, 1)
        _reinit(net)
    dim = net.fc.in_features
    net.fc = nn.Identity()
    return net, dim


class ContrastiveModel(nn.Module):
    """Backbone → (the downstream feature) → projection head Linear–ReLU–Linear (the reference's), or with
    ``head_bn`` Linear–BN–ReLU–Linear–BN (SimCLR's)."""

    def __init__(self, backbone: str = "resnet18", projection_dim: int = 128, width: int = 64,
                 stem: str = "imagenet", head_bn: bool = False) -> None:
        super().__init__()
        self.backbone, self.feature_dim = make_backbone(backbone, width, stem)
        self.width, self.stem = width, stem
        d = self.feature_dim
        if head_bn:      # SimCLR's head: BatchNorm after each linear layer (the last without an affine shift)
            self.head = nn.Sequential(nn.Linear(d, d, bias=False), nn.BatchNorm1d(d), nn.ReLU(inplace=True),
                                      nn.Linear(d, projection_dim, bias=False),
                                      nn.BatchNorm1d(projection_dim, affine=False))
        else:
            self.head = nn.Sequential(nn.Linear(d, d), nn.ReLU(inplace=True), nn.Linear(d, projection_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def save_encoder(path: str | Path, model: ContrastiveModel, backbone: str, record: dict) -> Path:
    """Write ``encoder.pt`` atomically: the backbone's state dict, its name and feature size, plus ``record``
    (the training config, the workflow config that made it, steps)."""
    with atomic_path(path, keep_stem=True) as tmp:
        torch.save({"backbone": model.backbone.state_dict(), "backbone_name": backbone,
                    "feature_dim": model.feature_dim, "width": model.width, "stem": model.stem, **record}, tmp)
    return Path(path)


def random_encoder(path: str | Path, backbone: str, seed: int, config: dict, width: int = 64,
                   stem: str = "imagenet") -> Path:
    """The floor of the ablation: an untrained encoder, drawn as the trainer draws its step-0 network with
    ``seed`` (so it is the backbone that a run with this seed starts from)."""
    torch.manual_seed(seed)
    return save_encoder(path, ContrastiveModel(backbone, width=width, stem=stem), backbone,
                        {"config": config, "steps": 0, "train_config": None})


def load_encoder(path: str, map_location: str = "cpu") -> tuple[nn.Module, dict]:
    """The backbone saved in ``encoder.pt`` (eval mode) and the record that came with it."""
    record = torch.load(path, map_location=map_location, weights_only=False)
    net, _ = make_backbone(record["backbone_name"], record.get("width", 64), record.get("stem", "imagenet"))
    net.load_state_dict(record["backbone"])          # strict: a key mismatch is an error, not a silent skip
    return net.eval(), record
