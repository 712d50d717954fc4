"""The pretraining settings: the method's switches (:class:`Variant`), every setting of a run
(:class:`TrainConfig`, the ``pretrain`` config section mapped by :meth:`TrainConfig.from_config`),
the learning-rate schedule and the two augmentation views they define."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field

from .augment import AugmentConfig
from .losses import FN_MODES


@dataclass
class Variant:
    """The method's switches; ``simclr`` is all off."""

    time_aug: bool = True
    hard_neg: bool = True
    face_swap: bool = True
    mask_fn: str = "top1"            # off | top1 | threshold

    def __post_init__(self) -> None:
        if self.mask_fn not in FN_MODES:
            raise ValueError(f"variant mask_fn must be one of {FN_MODES}, not {self.mask_fn!r}")


@dataclass
class TrainConfig:
    """The ``pretrain`` config section (minus the variant table) plus the chosen variant."""

    variant: Variant = field(default_factory=Variant)
    backbone: str = "resnet18"
    projection_dim: int = 128
    temperature: float = 0.07
    batch_tracks: int = 32
    steps: int = 200
    lr: float = 3e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 10
    schedule: str = "cosine"         # cosine (per step, after warm-up) | constant (the reference's near-constant lr)
    distribution: str = "c"
    swap_p: float = 0.8
    fn_threshold: float = 0.5
    fn_lambda: float = 0.8
    fn_attract: bool = True
    width: int = 48
    stem: str = "imagenet"
    head_bn: bool = False
    resize: int = 72
    crop: int = 64
    scale: tuple[float, float] | None = None
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.2)
    jitter_p: tuple[float, float] = (1.0, 0.8)
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    grey_p: float = 0.2
    landmark_mask_p: float = 0.8
    checkpoint_every: int = 50
    monitor_every: int = 0
    sync_bn: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        views(self)                       # the augmentation settings are validated here, at construction

    @classmethod
    def from_config(cls, settings: dict, seed: int, checkpoint_every: int, monitor_every: int) -> TrainConfig:
        """From a run's training settings (the ``pretrain`` section's shaping keys with the chosen variant's
        switches under ``switches``; see ``pretrain_settings`` in ``workflow/rules/common.smk``). The schema has
        filled in every default; invalid combinations raise ``ValueError`` here."""
        aug, fn = settings["augment"], settings["mask_fn"]
        return cls(
            variant=Variant(**settings["switches"]), backbone=settings["backbone"], width=settings["width"],
            stem=settings["stem"], head_bn=settings["head_bn"], projection_dim=settings["projection_dim"],
            temperature=settings["temperature"],
            batch_tracks=settings["batch_tracks"], steps=settings["steps"], lr=settings["lr"],
            weight_decay=settings["weight_decay"], warmup_steps=settings["warmup_steps"],
            schedule=settings["schedule"], swap_p=settings["swap_p"], fn_threshold=fn["threshold"],
            fn_lambda=fn["lambda"], fn_attract=fn["attract"], resize=aug["resize"], crop=aug["crop"],
            scale=None if aug["scale"] is None else tuple(aug["scale"]), ratio=tuple(aug["ratio"]),
            flip_p=aug["flip_p"], jitter=tuple(aug["jitter"]), jitter_p=tuple(aug["jitter_p"]), blur_p=aug["blur_p"],
            blur_sigma=tuple(aug["blur_sigma"]), grey_p=aug["grey_p"], landmark_mask_p=aug["landmark_mask_p"],
            checkpoint_every=checkpoint_every, monitor_every=monitor_every, sync_bn=settings["sync_bn"], seed=seed)

    def digest(self) -> str:
        """Hash of every setting that shapes the training trajectory, except how long it runs (``steps``) and how
        often it is saved or probed (``checkpoint_every``, ``monitor_every``): a checkpoint resumes only on a
        match, so a longer run continues a finished shorter one. (Under the cosine schedule the continued steps
        follow the new length's curve.)"""
        shaping = {k: v for k, v in asdict(self).items() if k not in ("steps", "checkpoint_every", "monitor_every")}
        return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:16]


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate of step ``step``: linear warm-up, then per-step cosine to 0 (or constant)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    t = (step - cfg.warmup_steps) / max(cfg.steps - cfg.warmup_steps, 1)
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * min(t, 1.0)))


def views(cfg: TrainConfig) -> tuple[AugmentConfig, AugmentConfig]:
    """The two views' pipelines (view 1: A and NA, view 2: P and NP); they differ only in ``jitter_p``
    (the reference's: colour jitter always in view 1, with p = 0.8 in view 2)."""
    common = dict(resize=cfg.resize, crop=cfg.crop, scale=cfg.scale, ratio=cfg.ratio, flip_p=cfg.flip_p,
                  jitter=cfg.jitter, blur_p=cfg.blur_p, blur_sigma=cfg.blur_sigma, grey_p=cfg.grey_p,
                  landmark_mask_p=cfg.landmark_mask_p)
    return AugmentConfig(jitter_p=cfg.jitter_p[0], **common), AugmentConfig(jitter_p=cfg.jitter_p[1], **common)
