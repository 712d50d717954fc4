"""Contrastive losses: NT-Xent (SimCLR) and its MaskFN variant (false negatives found by eye/mouth descriptors).

Layout of a batch of ``2N`` embeddings: rows ``0..N-1`` are the first views of N instances and rows
``N..2N-1`` their second views, so the positive of row ``i`` is row ``(i + N) mod 2N``. With HardNeg an
instance is an anchor A or a hard-negative anchor NA of some track, and the trainer orders rows as
``[A, NA, P, NP]``.

MaskFN (the reference's, with its defects fixed as noted):

- candidates of row ``i``: every other row except its positive, rows of the same track (``group``) and rows
  without a descriptor (``valid``) — the reference let same-track hard negatives and failed, all-black
  patches become "false negatives";
- ``top1``: the candidate with the highest descriptor cosine; ``threshold``: every candidate above it;
- the false negatives leave the denominator with ``-inf`` logits (the reference's threshold variant set them
  to 0, which keeps an ``e^0`` term);
- optionally they are pulled in as extra positives with weight ``lam``: for each false negative ``k`` of ``i``,
  ``-log(e^{s_ik} / (e^{s_ik} + Σ_negatives e^{s_ij}))`` averaged over ``i``'s false negatives, then over the
  rows that have any (the reference's L2 with top-1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

FN_MODES = ("off", "top1", "threshold")


def positive_index(n2: int, device: torch.device | None = None) -> torch.Tensor:
    """Index of each row's positive in a ``[view1; view2]`` batch of ``n2`` rows."""
    idx = torch.arange(n2, device=device)
    return (idx + n2 // 2) % n2


def similarity_logits(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cosine similarities / τ of L2-normalised rows, with the diagonal at -inf."""
    z = F.normalize(z.to(torch.promote_types(z.dtype, torch.float32)), dim=1)     # bf16 → fp32; fp64 stays
    logits = z @ z.T / temperature
    return logits.fill_diagonal_(float("-inf"))


def nt_xent(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent / InfoNCE over ``2N`` embeddings (mean over rows)."""
    logits = similarity_logits(z, temperature)
    return F.cross_entropy(logits, positive_index(len(z), z.device))


def false_negatives(desc: torch.Tensor, valid: torch.Tensor, group: torch.Tensor, mode: str,
                    threshold: float = 0.5) -> torch.Tensor:
    """Boolean ``(2N, 2N)`` mask of each row's false negatives chosen from the descriptors."""
    if mode not in FN_MODES:
        raise ValueError(f"MaskFN mode must be one of {FN_MODES}, not {mode!r}")
    n2 = len(desc)
    cand = group[:, None] != group[None, :]
    cand &= valid[:, None] & valid[None, :]
    cand[torch.arange(n2), positive_index(n2, desc.device)] = False
    cand.fill_diagonal_(False)
    if mode == "off":
        return torch.zeros_like(cand)
    d = F.normalize(desc.float(), dim=1) @ F.normalize(desc.float(), dim=1).T
    if mode == "threshold":
        return cand & (d > threshold)
    d = d.masked_fill(~cand, float("-inf"))
    k = d.argmax(1)
    fn = torch.zeros_like(cand)
    has = cand.any(1)
    fn[torch.arange(n2, device=desc.device)[has], k[has]] = True
    return fn


@dataclass
class LossOutput:
    """The loss and what the trainer logs about it."""

    loss: torch.Tensor
    nce: torch.Tensor
    attract: torch.Tensor
    pos_sim: float
    neg_sim: float
    masked_fraction: float


def maskfn_loss(z: torch.Tensor, temperature: float, fn: torch.Tensor, lam: float = 0.8,
                attract: bool = True) -> LossOutput:
    """NT-Xent with the false negatives ``fn`` removed (-inf), plus ``lam`` × their attraction term."""
    n2 = len(z)
    pos = positive_index(n2, z.device)
    logits = similarity_logits(z, temperature)
    nce = F.cross_entropy(logits.masked_fill(fn, float("-inf")), pos)
    attract_loss = logits.new_zeros(())
    rows = fn.any(1)
    if attract and lam > 0 and rows.any():
        negatives = ~fn
        negatives[torch.arange(n2, device=z.device), pos] = False
        negatives.fill_diagonal_(False)
        neg_lse = torch.logsumexp(logits.masked_fill(~negatives, float("-inf")), dim=1, keepdim=True)
        # -log(e^s_ik / (e^s_ik + Σ_neg e^s_ij)) for every false negative k of row i
        per_pair = torch.logaddexp(logits, neg_lse) - logits
        per_row = torch.where(fn, per_pair, 0.0).sum(1)[rows] / fn.sum(1)[rows]
        attract_loss = per_row.mean()
    with torch.no_grad():
        sims = logits.detach() * temperature
        eye = torch.eye(n2, dtype=torch.bool, device=z.device)
        pos_sim = sims[torch.arange(n2, device=z.device), pos].mean().item()
        neg_mask = ~eye
        neg_mask[torch.arange(n2, device=z.device), pos] = False
        neg_sim = sims[neg_mask].mean().item()
        masked = fn.sum().item() / max(neg_mask.sum().item(), 1)
    return LossOutput(nce + lam * attract_loss if attract else nce, nce, attract_loss, pos_sim, neg_sim, masked)
