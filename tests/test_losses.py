"""NT-Xent and MaskFN against direct computations on random embeddings; gradients flow."""

from __future__ import annotations

import math

import pytest
import torch

from sslfer.train.losses import false_negatives, maskfn_loss, nt_xent


def _direct_nt_xent(z: torch.Tensor, tau: float, removed: set | None = None) -> float:
    """The textbook loop: -log(exp(s_ip) / Σ_{j≠i, j∉removed_i} exp(s_ij))."""
    z = torch.nn.functional.normalize(z.double(), dim=1)
    n2 = len(z)
    total = 0.0
    for i in range(n2):
        p = (i + n2 // 2) % n2
        den = sum(math.exp(float(z[i] @ z[j]) / tau) for j in range(n2) if j != i and (i, j) not in (removed or set()))
        total += -math.log(math.exp(float(z[i] @ z[p]) / tau) / den)
    return total / n2


def test_nt_xent_equals_the_direct_computation():
    g = torch.Generator().manual_seed(0)
    for n, tau in ((4, 0.07), (8, 0.5), (16, 1.0)):
        z = torch.randn(2 * n, 32, generator=g)
        assert nt_xent(z, tau).item() == pytest.approx(_direct_nt_xent(z, tau), rel=1e-5)


def test_maskfn_removes_exactly_the_chosen_negatives_and_attracts_them():
    g = torch.Generator().manual_seed(1)
    n2, tau = 12, 0.2
    z = torch.randn(n2, 16, generator=g, requires_grad=True)
    desc = torch.randn(n2, 8, generator=g)
    group = torch.tensor([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]) // 2      # pairs of instances share a track
    valid = torch.ones(n2, dtype=torch.bool)
    valid[3] = False
    fn = false_negatives(desc, valid, group, "top1")
    pos = [(i + n2 // 2) % n2 for i in range(n2)]
    d = torch.nn.functional.normalize(desc, dim=1) @ torch.nn.functional.normalize(desc, dim=1).T
    for i in range(n2):
        cands = [j for j in range(n2) if j != i and j != pos[i] and group[j] != group[i] and valid[i] and valid[j]]
        chosen = fn[i].nonzero().flatten().tolist()
        assert chosen == ([max(cands, key=lambda j: d[i, j].item())] if cands else [])
    assert not fn[3].any() and not fn[:, 3].any()                                   # no descriptor: never an FN
    removed = {(i, j) for i, j in fn.nonzero().tolist()}
    out = maskfn_loss(z, tau, fn, lam=0.8)
    assert out.nce.item() == pytest.approx(_direct_nt_xent(z.detach(), tau, removed), rel=1e-5)
    # attraction term, direct: -log(e^{s_ik} / (e^{s_ik} + Σ_{j≠i,p(i),k} e^{s_ij}))
    zn = torch.nn.functional.normalize(z.detach().double(), dim=1)
    terms = []
    for i, k in removed:
        s = [float(zn[i] @ zn[j]) / tau for j in range(n2)]
        den = math.exp(s[k]) + sum(math.exp(s[j]) for j in range(n2) if j not in (i, pos[i], k))
        terms.append(-math.log(math.exp(s[k]) / den))
    assert out.attract.item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)
    assert out.loss.item() == pytest.approx(out.nce.item() + 0.8 * out.attract.item(), rel=1e-6)
    out.loss.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    assert out.masked_fraction == pytest.approx(len(removed) / (n2 * (n2 - 2)))


def test_threshold_mode_and_off():
    g = torch.Generator().manual_seed(2)
    n2 = 10
    desc = torch.randn(n2, 4, generator=g)
    group = torch.arange(n2) % (n2 // 2)
    valid = torch.ones(n2, dtype=torch.bool)
    fn = false_negatives(desc, valid, group, "threshold", threshold=0.3)
    d = torch.nn.functional.normalize(desc, dim=1) @ torch.nn.functional.normalize(desc, dim=1).T
    for i in range(n2):
        for j in range(n2):
            want = j != i and group[i] != group[j] and d[i, j] > 0.3
            assert bool(fn[i, j]) == bool(want)
    assert not false_negatives(desc, valid, group, "off").any()
    z = torch.randn(n2, 8, generator=g)
    none = maskfn_loss(z, 0.1, false_negatives(desc, valid, group, "off"))
    assert none.loss.item() == pytest.approx(nt_xent(z, 0.1).item(), rel=1e-6) and none.attract.item() == 0
    with pytest.raises(ValueError, match="MaskFN mode"):
        false_negatives(desc, valid, group, "top2")
