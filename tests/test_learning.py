"""A tiny model learns: its NT-Xent loss falls at a fixed seed; the backbone's width and stem build the
networks they say, survive encoder.pt, and the untrained encoder is the trainer's step-0 network."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from sslfer.train.data import TrainingData
from sslfer.train.model import STEMS, ContrastiveModel, load_encoder, make_backbone, random_encoder, save_encoder
from sslfer.train.settings import TrainConfig, Variant
from sslfer.train.trainer import Trainer

TINY = TrainConfig(variant=Variant(time_aug=True, hard_neg=False, face_swap=False, mask_fn="off"), width=16,
                   stem="imagenet", resize=36, crop=32, batch_tracks=6, lr=1e-3, steps=60, warmup_steps=0,
                   schedule="constant", checkpoint_every=1000, seed=0)


@pytest.fixture(scope="module")
def data(pretrain_corpus):
    return TrainingData(pretrain_corpus / "pairs.parquet", pretrain_corpus / "frames")


def nce(out) -> list[float]:
    return [json.loads(x)["loss_nce"] for x in (out / "metrics.jsonl").read_text().splitlines()]


def test_a_tiny_models_nt_xent_loss_falls(data, tmp_path):
    torch.set_num_threads(1)
    Trainer(data, TINY, tmp_path / "trained").fit()
    # the same batches and augmentations (both are seeded by (seed, step)) through the weights it starts from
    Trainer(data, replace(TINY, lr=0.0), tmp_path / "frozen").fit()
    trained, frozen = nce(tmp_path / "trained"), nce(tmp_path / "frozen")
    rows = json.loads((tmp_path / "trained" / "metrics.jsonl").read_text().splitlines()[0])["rows"]
    assert rows == 12 and len(trained) == TINY.steps
    first, last = np.mean(trained[:5]), np.mean(trained[-5:])
    assert first == pytest.approx(np.mean(frozen[:5]), rel=0.05)      # one step of lr 1e-3 changes little
    assert last < 0.8 * first and last < math.log(rows - 1)             # below chance: it tells tracks apart
    assert last < 0.8 * np.mean(frozen[-5:])                            # learning, not easier batches


@pytest.mark.parametrize("width", [16, 32])
@pytest.mark.parametrize("stem", STEMS)
def test_backbone_width_and_stem(width, stem):
    torch.manual_seed(0)
    net, dim = make_backbone("resnet18", width, stem)
    assert dim == 8 * width and isinstance(net.fc, nn.Identity)
    assert net.conv1.out_channels == width and net.layer4[-1].conv2.out_channels == 8 * width
    assert net.conv1.kernel_size == ((3, 3) if stem == "cifar" else (7, 7))
    assert net.conv1.stride == ((1, 1) if stem == "cifar" else (2, 2))
    assert isinstance(net.maxpool, nn.MaxPool2d) == (stem == "imagenet")
    maps = {}
    net.layer4.register_forward_hook(lambda m, i, o: maps.update(layer4=o.shape))     # returns None: output kept
    net.eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, dim) and torch.isfinite(out).all()
    side = {"imagenet": 1, "no_maxpool": 2, "cifar": 4}[stem]           # 32 px ÷ 32, ÷ 16, ÷ 8
    assert tuple(maps["layer4"]) == (2, 8 * width, side, side)
    # torchvision's parameter names, so encoder.pt files stay loadable by name
    reference = {k for k in torchvision.models.resnet18(weights=None).state_dict() if not k.startswith("fc.")}
    assert set(net.state_dict()) == reference


def test_default_backbone_is_torchvisions_resnet():
    torch.manual_seed(3)
    net, dim = make_backbone("resnet18")
    torch.manual_seed(3)
    tv = torchvision.models.resnet18(weights=None)
    tv.fc = nn.Identity()
    assert dim == 512
    a, b = net.state_dict(), tv.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    _, dim50 = make_backbone("resnet50", 16, "cifar")
    assert dim50 == 16 * 8 * 4                                          # bottleneck blocks: expansion 4
    with pytest.raises(ValueError, match="stem"):
        make_backbone("resnet18", 64, "vit")
    with pytest.raises(ValueError, match="width"):
        make_backbone("resnet18", 4)


@pytest.mark.parametrize("stem", STEMS)
def test_load_encoder_round_trips_width_and_stem(stem, tmp_path):
    torch.manual_seed(1)
    model = ContrastiveModel("resnet18", 32, width=16, stem=stem)
    path = save_encoder(tmp_path / "encoder.pt", model, "resnet18", {"note": "x"})
    net, record = load_encoder(str(path))
    assert (record["width"], record["stem"], record["feature_dim"]) == (16, stem, 128)
    assert not net.training
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x), model.backbone.eval()(x))
    # an encoder.pt from before width/stem existed is torchvision's network
    torch.save({k: v for k, v in torch.load(save_encoder(tmp_path / "old.pt", ContrastiveModel(), "resnet18", {}),
                                            weights_only=False).items() if k not in ("width", "stem")},
               tmp_path / "old.pt")
    old, _ = load_encoder(str(tmp_path / "old.pt"))
    assert old.conv1.out_channels == 64 and isinstance(old.maxpool, nn.MaxPool2d)


@pytest.mark.parametrize(("width", "stem", "head_bn"), [(16, "no_maxpool", False), (64, "imagenet", False),
                                                       (16, "cifar", True)])
def test_random_encoder_is_the_trainers_step_0_backbone(data, tmp_path, width, stem, head_bn):
    torch.set_num_threads(1)
    cfg = replace(TINY, width=width, stem=stem, head_bn=head_bn, seed=7)      # the head is drawn after the backbone
    trainer = Trainer(data, cfg, tmp_path / "run")
    net, record = load_encoder(str(random_encoder(tmp_path / "random.pt", "resnet18", 7, {}, width, stem)))
    assert (record["width"], record["stem"], record["steps"]) == (width, stem, 0)
    a, b = trainer.model.backbone.state_dict(), net.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    other, _ = load_encoder(str(random_encoder(tmp_path / "other.pt", "resnet18", 8, {}, width, stem)))
    assert not torch.equal(other.conv1.weight, net.conv1.weight)        # the seed matters
