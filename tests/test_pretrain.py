"""Pretraining: a run on real cached crops, resume after a kill, and DDP (gloo, 2 processes) = one process."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from sslfer.train.data import TrainingData
from sslfer.train.settings import TrainConfig, Variant
from sslfer.train.trainer import Trainer, contrastive_loss, gather_embeddings, gather_meta, interleave

SMALL = TrainConfig(batch_tracks=6, steps=6, resize=36, crop=32, checkpoint_every=2, warmup_steps=2,
                    variant=Variant(time_aug=True, hard_neg=True, face_swap=False, mask_fn="off"))


@pytest.fixture(scope="module")
def corpus_dir(pretrain_corpus) -> Path:
    """A results/{corpus}-like folder: one shard (the tiny corpus's frames) and its pairs.parquet (conftest)."""
    return pretrain_corpus


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
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 8 * SMALL.width)          # ResNet-18: 8 × the first stage


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


def test_a_checkpoint_of_other_data_or_settings_is_moved_aside_never_resumed(corpus_dir, tmp_path, caplog):
    torch.set_num_threads(1)
    data = TrainingData(corpus_dir / "pairs.parquet", corpus_dir / "frames")
    out = tmp_path / "run"
    assert Trainer(data, SMALL, out, data_digest="corpus-a").fit(stop_after=2) is None   # checkpoint at step 2
    first = (out / "checkpoint.pt").read_bytes()
    # the same settings on other training data: kept aside, training restarts from step 0
    with caplog.at_level("INFO", logger="sslfer.train.trainer"):
        other = Trainer(data, SMALL, out, data_digest="corpus-b")
        assert other.fit(stop_after=1) is None and other.step == 1
    assert "training-data fingerprint corpus-a is not this run's corpus-b" in caplog.text
    assert "training from step 0" in caplog.text
    assert (out / "aside-1" / "checkpoint.pt").read_bytes() == first              # never destroyed
    assert [json.loads(x)["step"] for x in (out / "aside-1" / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()] == [1]
    # other settings on the same data: aside again (a second folder), from step 0
    Trainer(data, SMALL, out, data_digest="corpus-b").save_checkpoint()
    caplog.clear()
    with caplog.at_level("INFO", logger="sslfer.train.trainer"):
        assert not Trainer(data, replace(SMALL, lr=1e-3), out, data_digest="corpus-b").try_resume()
    assert "settings digest" in caplog.text and (out / "aside-2" / "checkpoint.pt").is_file()


def test_a_checkpoint_of_another_thread_count_is_moved_aside(corpus_dir, tmp_path, caplog):
    # CPU reductions split by thread count: a run resumed on 2 threads would not continue the 1-thread run bit for bit
    data = TrainingData(corpus_dir / "pairs.parquet", corpus_dir / "frames")
    torch.set_num_threads(1)
    Trainer(data, SMALL, tmp_path, data_digest="d").save_checkpoint()
    torch.set_num_threads(2)
    try:
        with caplog.at_level("INFO", logger="sslfer.train.trainer"):
            assert not Trainer(data, SMALL, tmp_path, data_digest="d").try_resume()
    finally:
        torch.set_num_threads(1)
    assert "trained on cpu x1 t1, this run is on cpu x1 t2" in caplog.text
    assert (tmp_path / "aside-1" / "checkpoint.pt").is_file()


def test_raising_steps_continues_a_finished_run(corpus_dir, tmp_path, caplog):
    torch.set_num_threads(1)
    data = TrainingData(corpus_dir / "pairs.parquet", corpus_dir / "frames")
    short = replace(SMALL, steps=4)
    assert Trainer(data, short, tmp_path, data_digest="d").fit({"note": "short"}) is not None
    four = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["model"]
    with caplog.at_level("INFO", logger="sslfer.train.trainer"):
        longer = Trainer(data, SMALL, tmp_path, data_digest="d")               # steps 4 → 6
        enc = longer.fit({"note": "long"})
    assert "resuming from" in caplog.text and "at step 4 (of 6)" in caplog.text
    record = torch.load(enc, weights_only=False)
    assert longer.step == 6 and record["steps"] == 6
    assert record["segments"] == [[0, 4], [4, 6]] and record["hardware"] == "cpu x1 t1"  # a continued run says so
    assert not (tmp_path / "aside-1").exists()
    assert [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()] == list(range(1, 7))
    assert any(not torch.equal(four[k], v) for k, v in longer.model.state_dict().items() if k in four)
    # lowering steps below a checkpoint's step: it cannot be that run's state, so it is kept aside
    caplog.clear()
    with caplog.at_level("INFO", logger="sslfer.train.trainer"):
        assert not Trainer(data, replace(SMALL, steps=3), tmp_path, data_digest="d").try_resume()
    assert "beyond pretrain.steps = 3" in caplog.text and (tmp_path / "aside-1" / "checkpoint.pt").is_file()
