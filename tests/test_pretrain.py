"""Pretraining: a run on real cached crops, resume after a kill, and DDP (gloo, 2 processes) = one process."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from sslfer.pairs.index import build_pairs
from sslfer.parquet import write_parquet
from sslfer.train.data import TrainingData
from sslfer.train.trainer import TrainConfig, Trainer, Variant, contrastive_loss, gather_embeddings, gather_meta, interleave

PAIRS = {"positive_s": [0.48, 1.44], "hard_negative_min_s": 2.88, "distribution": "c"}
SMALL = TrainConfig(batch_tracks=6, steps=6, resize=36, crop=32, checkpoint_every=2, warmup_steps=2,
                    variant=Variant(time_aug=True, hard_neg=True, face_swap=False, mask_fn="off"))


@pytest.fixture(scope="module")
def corpus_dir(processed, video_manifest, tmp_path_factory) -> Path:
    """A results/{corpus}-like folder: one shard (the tiny corpus's frames) and its pairs.parquet."""
    root = tmp_path_factory.mktemp("corpus")
    shard = root / "frames" / "shard=00000"
    shard.mkdir(parents=True)
    for name in ("frames.parquet", "crops.npy"):
        shutil.copy(processed[0] / name, shard / name)
    manifest = root / "videos.parquet"
    pq.write_table(video_manifest.set_column(video_manifest.schema.get_field_index("shard"), "shard",
                                             pa.array(np.zeros(video_manifest.num_rows, np.int64))), manifest)
    write_parquet(build_pairs(manifest, [shard / "frames.parquet"], PAIRS), root / "pairs.parquet",
                  {"config": {"pairs": PAIRS}})
    return root


def _state(trainer: Trainer) -> dict:
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_batches_follow_the_pairs_and_resume_is_exact(corpus_dir, tmp_path):
    torch.set_num_threads(1)
    data = TrainingData(corpus_dir / "pairs.parquet", corpus_dir / "frames")
    batch, n_views = Trainer(data, SMALL, tmp_path / "probe").make_batch(0)
    # rows [A, NA, P, NP] of 6 tracks: every row of block k is the same track; crops are the cached pixels
    assert n_views == 4 and batch.images.shape == (24, 128, 128, 3)
    assert (batch.group.reshape(4, 6) == batch.group[:6]).all() and len(set(batch.group[:6])) == 6
    full = Trainer(data, SMALL, tmp_path / "full")
    enc = full.fit({"note": "test"})
    killed = Trainer(data, SMALL, tmp_path / "resumed")
    assert killed.fit(stop_after=3) is None                        # "killed" after step 3; checkpoint at 2
    resumed = Trainer(data, SMALL, tmp_path / "resumed")
    assert resumed.fit({"note": "test"}) is not None and resumed.step == 6
    a, b = _state(full), _state(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    m_full = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    m_res = [json.loads(x) for x in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in m_res] == list(range(1, 7))
    assert [m["loss"] for m in m_full] == [m["loss"] for m in m_res]
    assert {"loss", "lr", "images_per_s", "pos_sim", "neg_sim", "masked_fraction"} <= set(m_full[0])
    record = torch.load(enc, weights_only=False)
    assert record["config"] == {"note": "test"} and record["backbone_name"] == "resnet18"
    from sslfer.train.model import load_encoder

    net, _ = load_encoder(str(enc))
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 512)


def _ddp_rank(rank: int, world: int, port: int, x: torch.Tensor, meta: dict, n_views: int, cfg: TrainConfig,
              out: str) -> None:
    import torch.distributed as dist

    from sslfer.train.model import ContrastiveModel

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(ContrastiveModel(cfg.backbone, cfg.projection_dim).double())
    per = len(x) // world // n_views
    local = lambda t: t.reshape(n_views, -1, *t.shape[1:])[:, rank * per:(rank + 1) * per].reshape(-1, *t.shape[1:])  # noqa: E731
    z = gather_embeddings(model(local(x)), n_views)
    loss = contrastive_loss(z, gather_meta({k: local(v) for k, v in meta.items()}, n_views), cfg).loss
    loss.backward()
    if rank == 0:
        torch.save({"loss": loss.detach(), "grads": {n: p.grad for n, p in model.module.named_parameters()}}, out)
    dist.destroy_process_group()


def test_two_gloo_processes_match_one_process(tmp_path):
    import torch.multiprocessing as mp

    from sslfer.train.model import ContrastiveModel

    torch.set_num_threads(1)
    cfg = replace(SMALL, variant=Variant(True, True, False, "top1"))
    g = torch.Generator().manual_seed(0)
    n_views, b = 4, 4                      # 4 view blocks × 4 tracks; each rank holds 2 tracks of every block
    x = torch.randn(n_views * b, 3, 32, 32, generator=g, dtype=torch.float64)    # float64: no summation-order noise
    meta = {"descriptors": torch.randn(n_views * b, 8, generator=g), "valid": torch.rand(n_views * b, generator=g) > 0.2,
            "group": torch.arange(b).repeat(n_views)}
    out = str(tmp_path / "rank0.pt")
    mp.spawn(_ddp_rank, args=(2, 29517, x, meta, n_views, cfg, out), nprocs=2, join=True)
    ddp = torch.load(out, weights_only=False)
    # one process, same global batch; BatchNorm statistics per rank's half, as under DDP
    torch.manual_seed(0)
    model = ContrastiveModel(cfg.backbone, cfg.projection_dim).double()
    blocks = x.reshape(n_views, b, *x.shape[1:])
    z = interleave([model(blocks[:, r * 2:(r + 1) * 2].reshape(-1, *x.shape[1:])) for r in range(2)], n_views)
    loss = contrastive_loss(z, meta, cfg).loss
    loss.backward()
    assert loss.item() == pytest.approx(ddp["loss"].item(), rel=1e-10)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, ddp["grads"][name], rtol=1e-9, atol=1e-12)
