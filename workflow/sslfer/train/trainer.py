"""The pretraining loop: batches from :mod:`.data`, augmentations, NT-Xent / MaskFN, Adam, checkpoints, DDP.

Determinism and resuming: everything random in step ``s`` comes from generators seeded by ``(seed, s)``
(augmentations, swap choice) or ``(seed, epoch)`` (the epoch's draw from ``pairs.parquet`` and its batch
order), and the learning rate is a function of ``s``. So ``checkpoint.pt`` (model + optimiser + step) is
all a resumed run needs to continue exactly as an uninterrupted one would (on CPU, bit for bit).

Distributed (``torchrun``): each rank builds and augments its share of the global batch, the embeddings
are all-gathered with gradients (``torch.distributed.nn.functional.all_gather``), and every rank computes
the loss on the whole global batch; DDP's gradient averaging then gives exactly the single-process
gradient of that loss. BatchNorm statistics are per rank unless ``sync_bn`` (CUDA only) is set.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from .augment import augment
from .data import Batch, TrainingData
from .losses import false_negatives, maskfn_loss
from .model import ContrastiveModel, save_encoder
from .monitor import Monitor
from .settings import TrainConfig, lr_at, views
from ..files import atomic_path

log = logging.getLogger(__name__)


class Schedule:
    """Which tracks of which epoch's draw make step ``s``'s global batch."""

    def __init__(self, data: TrainingData, cfg: TrainConfig) -> None:
        self.data, self.cfg = data, cfg
        v = cfg.variant
        n = len(data.index.eligible_tracks(v.time_aug, v.hard_neg))
        if n < 2:
            raise ValueError(f"only {n} track(s) can serve variant {v}: too few to train (see pairs_summary.json)")
        self.batch_tracks = min(cfg.batch_tracks, n)
        if self.batch_tracks < cfg.batch_tracks:
            log.warning("only %d tracks can serve this variant: batch_tracks lowered from %d", n, cfg.batch_tracks)
        self.steps_per_epoch = max(1, n // self.batch_tracks)
        self._epoch, self._draw, self._perm = -1, None, None

    def rows(self, step: int):
        """(draw, global rows of the draw) for ``step``."""
        epoch, b = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            v = self.cfg.variant
            self._draw = self.data.index.draw(self.cfg.seed, epoch, v.time_aug, v.hard_neg, self.cfg.distribution)
            self._perm = np.random.default_rng([self.cfg.seed, epoch, 1]).permutation(len(self._draw.track))
            self._epoch = epoch
        return self._draw, self._perm[b * self.batch_tracks:(b + 1) * self.batch_tracks]


def _chunk(rows: np.ndarray, rank: int, world: int) -> np.ndarray:
    per = len(rows) // world
    return rows[rank * per:(rank + 1) * per]


def interleave(parts: list[torch.Tensor], n_views: int) -> torch.Tensor:
    """Per-rank ``[view blocks]`` tensors → one global ``[view 1 of all ranks; view 2 of all ranks; …]``."""
    blocks = [p.reshape(n_views, -1, *p.shape[1:]) for p in parts]
    return torch.cat(blocks, dim=1).reshape(-1, *parts[0].shape[1:])


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_embeddings(z: torch.Tensor, n_views: int) -> torch.Tensor:
    """Every rank's embeddings in global batch order, with gradients flowing back to their own rank."""
    if _world() == 1:
        return z
    import warnings

    from torch.distributed.nn.functional import all_gather

    with warnings.catch_warnings():       # deprecated in favour of a private API; it works in the pinned torch
        warnings.simplefilter("ignore", FutureWarning)
        return interleave(list(all_gather(z)), n_views)


def gather_meta(meta: dict[str, torch.Tensor], n_views: int) -> dict[str, torch.Tensor]:
    """Every rank's descriptors / validity / track ids in global batch order."""
    if _world() == 1:
        return meta
    out = {}
    for k, v in meta.items():
        t = v.to(torch.uint8) if v.dtype == torch.bool else v.contiguous()     # gloo has no bool all_gather
        parts = [torch.empty_like(t) for _ in range(_world())]
        dist.all_gather(parts, t)
        out[k] = interleave(parts, n_views).to(v.dtype)
    return out


def contrastive_loss(z: torch.Tensor, batch_meta: dict, cfg: TrainConfig):
    """NT-Xent or MaskFN on the global batch's embeddings (rows [A, NA, P, NP])."""
    v = cfg.variant
    fn = false_negatives(batch_meta["descriptors"], batch_meta["valid"], batch_meta["group"],
                         v.mask_fn, cfg.fn_threshold)
    return maskfn_loss(z, cfg.temperature, fn, cfg.fn_lambda, cfg.fn_attract and v.mask_fn != "off")


class Trainer:
    """Pretrain one variant into ``out_dir`` (``encoder.pt``, ``checkpoint.pt``, ``metrics.jsonl``)."""

    def __init__(self, data: TrainingData, cfg: TrainConfig, out_dir: str | Path, device: str | None = None,
                 data_digest: str = "", monitor: Monitor | None = None) -> None:
        self.data, self.cfg, self.out = data, cfg, Path(out_dir)
        self.monitor = monitor if cfg.monitor_every > 0 else None
        self.data_digest = data_digest        # fingerprint of the training data (see pipeline.training_data_digest)
        self.out.mkdir(parents=True, exist_ok=True)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        if device is None:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        torch.manual_seed(cfg.seed)
        model = ContrastiveModel(cfg.backbone, cfg.projection_dim, cfg.width, cfg.stem, cfg.head_bn)
        if cfg.sync_bn and self.world > 1 and self.device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = model.to(self.device)
        # channels_last and bf16 autocast stay CUDA-only: on the CPU both make a step slower
        # (benchmarks/pretrain_step.py compares them)
        if self.device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.ddp = torch.nn.parallel.DistributedDataParallel(model) if self.world > 1 else None
        self.opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.schedule = Schedule(data, cfg)
        #: what a checkpoint must also match: CPU and GPU runs, other rank counts, or CPU runs with other
        #: thread counts (their reductions split differently) differ numerically
        self.hardware = f"{self.device.type} x{self.world}" + (
            f" t{torch.get_num_threads()}" if self.device.type == "cpu" else "")
        #: (first step, pretrain.steps) of each training session of this run: a run continued to a longer
        #: ``steps`` says so, since under the cosine schedule it differs from a fresh run of that length
        self.segments: list[list[int]] = []
        self.view1, self.view2 = views(cfg)
        self.step = 0

    # ---------------------------------------------------------------------------------------------- state
    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def save_checkpoint(self) -> None:
        if self.rank != 0:
            return
        with atomic_path(self.checkpoint_path, keep_stem=True) as tmp:
            torch.save({"model": self.model.state_dict(), "optimizer": self.opt.state_dict(), "step": self.step,
                        "digest": self.cfg.digest(), "data_digest": self.data_digest, "hardware": self.hardware,
                        "segments": self.segments}, tmp)

    def _mismatch(self, ck: dict) -> str | None:
        """Why checkpoint ``ck`` cannot continue this run, or None when it can."""
        if ck.get("digest") != self.cfg.digest():
            return f"its settings digest {ck.get('digest')} is not this run's {self.cfg.digest()}"
        if ck.get("data_digest") != self.data_digest:
            return f"its training-data fingerprint {ck.get('data_digest')} is not this run's {self.data_digest}"
        if ck.get("hardware") != self.hardware:
            return f"it was trained on {ck.get('hardware')}, this run is on {self.hardware}"
        if int(ck["step"]) > self.cfg.steps:
            return f"it is at step {ck['step']}, beyond pretrain.steps = {self.cfg.steps}"
        return None

    def _move_aside(self) -> Path:
        """Move ``checkpoint.pt`` and ``metrics.jsonl`` to the first free ``aside-<n>/`` folder (never deleted)."""
        n = 1
        while (self.out / f"aside-{n}").exists():
            n += 1
        aside = self.out / f"aside-{n}"
        aside.mkdir()
        for name in ("checkpoint.pt", "metrics.jsonl", "monitor.jsonl"):
            if (self.out / name).exists():
                os.replace(self.out / name, aside / name)
        return aside

    def try_resume(self) -> bool:
        """Continue from ``checkpoint.pt`` when it was made by the same settings on the same training data (True
        if resumed); a checkpoint that does not match is moved aside with a warning, never resumed or deleted."""
        if not self.checkpoint_path.is_file():
            log.info("no checkpoint in %s: training from step 0", self.out)
            return False
        ck = torch.load(self.checkpoint_path, map_location=self.device, weights_only=False)
        why = self._mismatch(ck)
        if why is not None:
            if _world() > 1:
                dist.barrier()                   # every rank has read it before rank 0 moves it
            aside = self._move_aside() if self.rank == 0 else None
            log.warning("%s does not match this run (%s): moved to %s; training from step 0",
                        self.checkpoint_path, why, aside)
            return False
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.step = int(ck["step"])
        self.segments = list(ck.get("segments", []))
        log.info("resuming from %s at step %d (of %d)", self.checkpoint_path, self.step, self.cfg.steps)
        return True

    def save_encoder(self, config_record: dict) -> Path:
        path = self.out / "encoder.pt"
        if self.rank == 0:
            save_encoder(path, self.model, self.cfg.backbone,
                         {"train_config": asdict(self.cfg), "config": config_record, "steps": self.step,
                          "data_digest": self.data_digest, "hardware": self.hardware, "segments": self.segments})
        return path

    # ---------------------------------------------------------------------------------------------- steps
    def make_batch(self, step: int) -> tuple[Batch, int]:
        """This rank's share of step ``step``'s global batch, and the number of view blocks."""
        draw, rows = self.schedule.rows(step)
        local = _chunk(rows, self.rank, self.world)
        rng = np.random.default_rng([self.cfg.seed, step, 2, self.rank])
        batch = self.data.batch(draw, local, rng, self.cfg.swap_p if self.cfg.variant.face_swap else 0.0)
        return batch, len(batch.group) // len(local)

    def augment_batch(self, batch: Batch, step: int, n_views: int) -> torch.Tensor:
        seed = int(np.random.SeedSequence([self.cfg.seed, step, 3, self.rank]).generate_state(1)[0])
        g = torch.Generator().manual_seed(seed)
        images = torch.from_numpy(batch.images).to(self.device, non_blocking=True)
        lms = torch.from_numpy(batch.landmarks).to(self.device)
        half = len(images) // 2 if n_views in (2, 4) else len(images)
        x1 = augment(images[:half], lms[:half], self.view1, g)
        x2 = augment(images[half:], lms[half:], self.view2, g)
        x = torch.cat([x1, x2])
        return x.contiguous(memory_format=torch.channels_last) if self.device.type == "cuda" else x

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        net = self.ddp or self.model
        if self.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return net(x).float()
        return net(x)

    def train_step(self, step: int, batch: Batch, n_views: int) -> dict:
        t0 = time.perf_counter()
        for group in self.opt.param_groups:
            group["lr"] = lr_at(step, self.cfg)
        x = self.augment_batch(batch, step, n_views)
        meta = {"descriptors": torch.from_numpy(batch.descriptors), "valid": torch.from_numpy(batch.valid),
                "group": torch.from_numpy(batch.group)}
        z = gather_embeddings(self.embed(x), n_views)
        out = contrastive_loss(z, gather_meta({k: v.to(self.device) for k, v in meta.items()}, n_views), self.cfg)
        self.opt.zero_grad(set_to_none=True)
        out.loss.backward()
        self.opt.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        dt = time.perf_counter() - t0
        return {"step": step + 1, "epoch": step // self.schedule.steps_per_epoch, "rows": len(z),
                "loss": round(out.loss.item(), 6),
                "loss_nce": round(out.nce.item(), 6), "loss_fn": round(out.attract.item(), 6),
                "lr": lr_at(step, self.cfg), "images_per_s": round(len(z) / dt, 1),
                "pos_sim": round(out.pos_sim, 4), "neg_sim": round(out.neg_sim, 4),
                "masked_fraction": round(out.masked_fraction, 5), "swap_rate": round(float(batch.swapped.mean()), 4)}

    def _batches(self, start: int, stop: int):
        """Batches of steps start..stop-1, built one ahead in a background thread."""
        q: queue.Queue = queue.Queue(maxsize=2)

        def work():
            try:
                for s in range(start, stop):
                    q.put((s,) + self.make_batch(s))
                q.put(None)
            except BaseException as err:  # handed to the training loop, which raises it
                q.put(err)

        threading.Thread(target=work, daemon=True).start()
        while (item := q.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    def _keep_lines(self, path: Path, resumed: bool) -> None:
        """Start ``path`` (a per-step JSON-lines log) afresh, keeping the lines up to the resumed step."""
        kept = []
        if resumed and path.is_file():
            kept = [ln for ln in path.read_text().splitlines() if json.loads(ln)["step"] <= self.step]
        path.write_text("".join(ln + "\n" for ln in kept))

    def _probe(self, fh, recent: list[dict], elapsed: float) -> dict:
        """One ``monitor.jsonl`` record now: the monitor's probes, and the contrastive loss of the steps since
        the last record beside its chance level ln(2N − 1) (2N rows in the global batch)."""
        record = self.monitor.measure(self.model, self.step, self.device)
        if recent:
            rows = recent[-1]["rows"]
            nce = float(np.mean([r["loss_nce"] for r in recent]))
            record.update(loss_nce=round(nce, 4), chance=round(math.log(rows - 1), 4),
                          nce_ratio=round(nce / math.log(rows - 1), 4))
        record["train_seconds"] = round(elapsed, 1)
        fh.write(json.dumps(record) + "\n")
        fh.flush()
        return record

    def fit(self, config_record: dict | None = None, stop_after: int | None = None) -> Path | None:
        """Train to ``cfg.steps`` (resuming if possible); ``stop_after`` stops early (tests: a simulated kill).
        With a monitor, probe at step 0, every ``monitor_every`` steps and at the last step (``monitor.jsonl``)."""
        self.model.train()
        metrics, monitor_log = self.out / "metrics.jsonl", self.out / "monitor.jsonl"
        resumed = self.try_resume()
        if not self.segments or self.segments[-1][1] != self.cfg.steps:
            self.segments.append([self.step, self.cfg.steps])
        probing = self.monitor is not None and self.rank == 0
        if self.rank == 0:
            self._keep_lines(metrics, resumed)
            if probing:
                self._keep_lines(monitor_log, resumed)
        end = self.cfg.steps if stop_after is None else min(self.cfg.steps, stop_after)
        bar = tqdm(total=self.cfg.steps, initial=self.step, desc="pretrain", unit="step", mininterval=10.0,
                   disable=self.rank != 0)
        recent: list[dict] = []
        if probing and resumed:      # the kept steps after the last kept record count toward the next one
            last = max((json.loads(ln)["step"] for ln in monitor_log.read_text().splitlines()), default=0)
            recent = [r for r in map(json.loads, metrics.read_text().splitlines()) if r["step"] > last]
        probe_postfix: dict = {}
        started = time.perf_counter()
        with open(metrics, "a") if self.rank == 0 else open(os.devnull, "w") as fh, \
                open(monitor_log, "a") if probing else open(os.devnull, "w") as mh:
            if probing and self.step == 0:
                self._probe(mh, [], 0.0)
            for step, batch, n_views in self._batches(self.step, end):
                record = self.train_step(step, batch, n_views)
                self.step = step + 1
                fh.write(json.dumps(record) + "\n")
                fh.flush()
                recent.append(record)
                if probing and (self.step % self.cfg.monitor_every == 0 or self.step == self.cfg.steps):
                    m = self._probe(mh, recent, time.perf_counter() - started)
                    recent = []
                    probe_postfix = {k: m[k] for k in ("expression_f1", "identity_acc") if k in m}
                bar.update()
                bar.set_postfix(loss=record["loss"], img_s=record["images_per_s"], **probe_postfix, refresh=False)
                if self.step % self.cfg.checkpoint_every == 0:
                    self.save_checkpoint()
        bar.close()
        if self.step < self.cfg.steps:
            return None
        self.save_checkpoint()
        return self.save_encoder(config_record or {})
