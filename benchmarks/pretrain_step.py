"""Benchmark: one CPU pretraining step, phase by phase, for several speed-ups side by side in one run.

On a preprocessed corpus (default ``results/synth``, made by ``make demo``: ``pairs.parquet``, ``frames/``,
``swaps/``, ``descriptors/``) it builds :class:`~sslfer.train.data.TrainingData` and a
:class:`~sslfer.train.trainer.Trainer` as ``sslfer.train.run.train`` does (variant ``all``: TimeAug,
HardNeg, FaceSwap, MaskFN top1; the schema's default settings: 72 px resize → 64 px crops, 32 tracks → 128
images per step), one trainer per *setup*, and times every step in four phases:

1. ``batch``   — :meth:`Trainer.make_batch` (the epoch's draw, gathering crops/swaps from the memory maps);
2. ``augment`` — :meth:`Trainer.augment_batch` (both views, batched tensor augmentations);
3. ``fwd+loss`` — the forward pass and the MaskFN/NT-Xent loss;
4. ``bwd+opt`` — backward and the Adam step.

(``Trainer.train_step`` does 2–4 in one go, and ``fit`` builds the next batch (1) in a background thread.)
A setup is ``base`` (the code as it is: NCHW, ``torch.set_num_threads(2)``, OpenMP waiting as inherited) or
``+``-joined changes made here, by subclassing the trainer, never by editing it:

- ``cl``: channels_last model and input (``model.to(memory_format=torch.channels_last)``,
  ``x.contiguous(memory_format=torch.channels_last)``, as the trainer already does on CUDA);
- ``t1`` / ``t2`` …: ``torch.set_num_threads`` for the whole step (set before each of its steps);
- ``bf16``: forward under ``torch.autocast("cpu", dtype=torch.bfloat16)`` (the loss in float32);
- ``fused`` / ``foreach``: Adam's fused / multi-tensor implementation instead of the per-parameter loop;
- ``w32``, ``w48`` …: ``TrainConfig(width=…)`` (a narrower network: different model, not a free speed-up);
  ``nomaxpool`` / ``cifar``: ``TrainConfig(stem=…)`` (a finer feature map);
- ``blk64`` …: the augmentation's ``CPU_BLOCK`` (samples per cache block);
- ``simclr``: the ``simclr`` variant instead of ``all`` (64 images per step);
- ``passive``: ``OMP_WAIT_POLICY=PASSIVE`` (OpenMP threads sleep at once at a barrier instead of spinning
  first); ``i1``: ``torch.set_num_interop_threads(1)`` (default 2). Both are fixed when the process starts.

The steps run in worker processes, one per process-wide setting (``passive``, ``i<N>``), each holding its
setups' trainers; this process only orders the work and reads the timings back.

Every setup runs the same step numbers (so the same batches): ``--warmup`` untimed steps, then ``--rounds``
rounds in which each setup in turn runs ``--steps`` timed steps (interleaved: A, B, C, A, B, C, …, the
order rotated each round), so that other load on the machine hits all setups alike. The table gives the
median ms per phase over all timed steps, images/s from the median step time and ``x base``: the median over
rounds of (base's mean step time / the setup's) in the same round, a paired ratio; ``cpu/wall`` the worker's
CPU time (all threads) over wall time (OpenMP threads spinning at barriers show up there); ``losses`` whether
the setup's losses, step by step, are bit-identical to the first setup's (same network only).

Then, unless switched off: ``torch.profiler`` top operators of one step per ``--profile`` setup and the
augmentation alone for several ``CPU_BLOCK`` sizes (interleaved, outputs checked equal), both in the setup's
worker; and in this process numerical checks on ``--check-steps`` fresh steps (channels_last vs NCHW losses,
bf16 vs float32, fused Adam, and whether two runs of one setup give bit-identical losses and weights, also
across thread counts). Run with the project's environment:

    python benchmarks/pretrain_step.py [--corpus results/synth] [--rounds 3 --steps 2] [--setups base cl …]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

#: The OpenMP wait policy this benchmark was started with: the workers of setups without ``passive`` get it
#: back. This process itself (which only runs the numerical checks) waits passively: that changes no number,
#: only how long the checks take on a shared machine.
INHERITED_POLICY = os.environ.get("OMP_WAIT_POLICY")
if "--worker" not in sys.argv:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

import sslfer.train.augment as augment_module  # noqa: E402
from sslfer.train.data import TrainingData  # noqa: E402
from sslfer.train.settings import TrainConfig, Variant, lr_at  # noqa: E402
from sslfer.train.trainer import Trainer, contrastive_loss, gather_embeddings, gather_meta  # noqa: E402

PHASES = ("batch", "augment", "fwd+loss", "bwd+opt")
VARIANTS = {"all": Variant(), "simclr": Variant(time_aug=False, hard_neg=False, face_swap=False, mask_fn="off")}
DEFAULT_SETUPS = ("base", "t1", "passive", "cl+passive", "fused+passive", "w48+passive", "w32+passive",
                  "w32+nomaxpool+passive")
DEFAULT_THREADS = 2


@dataclass(frozen=True)
class Setup:
    """One column of the comparison, parsed from a name such as ``cl+bf16+t1``."""

    name: str
    threads: int = DEFAULT_THREADS
    channels_last: bool = False
    bf16: bool = False
    adam: str = ""                   # "" (torch's default for CPU: the per-parameter loop) | fused | foreach
    width: int = 64
    stem: str = "imagenet"
    block: int = augment_module.CPU_BLOCK
    variant: str = "all"
    passive: bool = False            # OMP_WAIT_POLICY=PASSIVE (process-wide)
    interop: int = 0                 # torch.set_num_interop_threads (process-wide; 0: torch's default)

    @property
    def process(self) -> tuple[bool, int]:
        """The process-wide part: setups that share it run in one worker process."""
        return self.passive, self.interop

    @classmethod
    def parse(cls, name: str) -> Setup:
        s = cls(name)
        for tok in name.split("+"):
            if tok == "base":
                continue
            elif tok == "cl":
                s = replace(s, channels_last=True)
            elif tok == "bf16":
                s = replace(s, bf16=True)
            elif tok in ("fused", "foreach"):
                s = replace(s, adam=tok)
            elif tok in ("nomaxpool", "no_maxpool"):
                s = replace(s, stem="no_maxpool")
            elif tok == "cifar":
                s = replace(s, stem="cifar")
            elif tok == "passive":
                s = replace(s, passive=True)
            elif tok[:1] == "i" and tok[1:].isdigit():
                s = replace(s, interop=int(tok[1:]))
            elif tok in VARIANTS:
                s = replace(s, variant=tok)
            elif tok[:1] == "t" and tok[1:].isdigit():
                s = replace(s, threads=int(tok[1:]))
            elif tok[:1] == "w" and tok[1:].isdigit():
                s = replace(s, width=int(tok[1:]))
            elif tok[:3] == "blk" and tok[3:].isdigit():
                s = replace(s, block=int(tok[3:]))
            else:
                raise SystemExit(f"setup {name!r}: unknown change {tok!r} (see --help)")
        return s


class BenchTrainer(Trainer):
    """The pipeline's trainer with one setup's changes (the trainer's own code is untouched)."""

    def __init__(self, data: TrainingData, cfg: TrainConfig, out_dir: str | Path, setup: Setup) -> None:
        super().__init__(data, cfg, out_dir, device="cpu")
        self.setup = setup
        if setup.channels_last:
            self.model.to(memory_format=torch.channels_last)   # in place: the optimiser's parameters stay valid
        if setup.adam:
            self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                        **{setup.adam: True})

    def augment_batch(self, batch, step: int, n_views: int) -> torch.Tensor:
        x = super().augment_batch(batch, step, n_views)
        return x.contiguous(memory_format=torch.channels_last) if self.setup.channels_last else x

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        if self.setup.bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return self.model(x).float()
        return super().embed(x)


def train_config(setup: Setup) -> TrainConfig:
    """The schema's default ``pretrain`` settings (TrainConfig's defaults are the same) with the setup's model."""
    return TrainConfig(variant=VARIANTS[setup.variant], width=setup.width, stem=setup.stem)


def load_data(corpus: Path, variant: Variant) -> TrainingData:
    """As ``sslfer.train.run.train`` reads it."""
    return TrainingData(corpus / "pairs.parquet", corpus / "frames", corpus / "swaps" if variant.face_swap else None,
                        corpus / "descriptors" if variant.mask_fn != "off" else None)


def activate(setup: Setup) -> None:
    """Process-wide settings of a setup, made before each of its steps."""
    torch.set_num_threads(setup.threads)
    augment_module.CPU_BLOCK = setup.block


def timed_step(tr: BenchTrainer, step: int) -> tuple[list[float], float, int, float]:
    """One training step as ``Trainer.train_step`` does it (after ``make_batch``): seconds per phase, loss, images,
    and the CPU seconds this process used (all its threads)."""
    c0 = time.process_time()
    t0 = time.perf_counter()
    batch, n_views = tr.make_batch(step)
    t1 = time.perf_counter()
    for group in tr.opt.param_groups:
        group["lr"] = lr_at(step, tr.cfg)
    x = tr.augment_batch(batch, step, n_views)
    t2 = time.perf_counter()
    meta = {"descriptors": torch.from_numpy(batch.descriptors), "valid": torch.from_numpy(batch.valid),
            "group": torch.from_numpy(batch.group)}
    z = gather_embeddings(tr.embed(x), n_views)
    out = contrastive_loss(z, gather_meta({k: v.to(tr.device) for k, v in meta.items()}, n_views), tr.cfg)
    loss = out.loss.item()
    t3 = time.perf_counter()
    tr.opt.zero_grad(set_to_none=True)
    out.loss.backward()
    tr.opt.step()
    t4 = time.perf_counter()
    return [t1 - t0, t2 - t1, t3 - t2, t4 - t3], loss, len(z), time.process_time() - c0


def make_trainer(s: Setup, data: dict[str, TrainingData], corpus: Path, tmp: Path) -> BenchTrainer:
    if s.variant not in data:
        data[s.variant] = load_data(corpus, VARIANTS[s.variant])
    activate(s)
    return BenchTrainer(data[s.variant], train_config(s), tempfile.mkdtemp(dir=tmp), s)


def worker(corpus: Path) -> None:
    """``--worker``: do what stdin asks (JSON lines: steps of a setup, a profiled step, the CPU_BLOCK comparison),
    answer one JSON line each on stdout."""
    trainers: dict[str, BenchTrainer] = {}
    data: dict[str, TrainingData] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for line in sys.stdin:
            ask = json.loads(line)
            s = Setup.parse(ask["setup"])
            if s.name not in trainers:
                trainers[s.name] = make_trainer(s, data, corpus, Path(tmp))
            tr = trainers[s.name]
            activate(s)
            if ask["call"] == "steps":
                done = [timed_step(tr, step) for step in range(ask["first"], ask["first"] + ask["n"])]
                answer = {"phases": [d[0] for d in done], "losses": [d[1] for d in done], "images": done[0][2],
                          "cpu": [d[3] for d in done]}
            elif ask["call"] == "profile":
                answer = {"text": profile(tr, ask["first"], ask["rows"])}
            else:
                answer = {"text": augment_blocks(tr, ask["blocks"], ask["rounds"], ask["n"])}
            print(json.dumps(answer), flush=True)


class Worker:
    """A ``--worker`` process with one process-wide setting."""

    def __init__(self, process: tuple[bool, int], corpus: Path) -> None:
        passive, interop = process
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        if passive or INHERITED_POLICY:
            env["OMP_WAIT_POLICY"] = "PASSIVE" if passive else INHERITED_POLICY
        cmd = [sys.executable, __file__, "--worker", "--corpus", str(corpus)] + (["--interop", str(interop)]
                                                                                  if interop else [])
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def run(self, setup: str, call: str = "steps", **ask) -> dict:
        self.proc.stdin.write(json.dumps({"setup": setup, "call": call, **ask}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"worker for {setup} exited with {self.proc.wait()}")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def compare(setups: list[Setup], workers: dict[tuple, Worker], warmup: int, rounds: int, steps: int) -> None:
    """The interleaved timing and its table."""
    times: dict[str, list[list[float]]] = {s.name: [] for s in setups}     # per timed step: phase seconds
    per_round: dict[str, list[float]] = {s.name: [] for s in setups}       # mean step seconds per round
    cpu: dict[str, list[float]] = {s.name: [] for s in setups}            # per timed step: CPU seconds
    images: dict[str, int] = {}
    started = time.perf_counter()
    losses: dict[str, list[float]] = {s.name: [] for s in setups}         # per timed step
    for s in setups:                                                        # warm-up: untimed
        if warmup:
            workers[s.process].run(s.name, first=0, n=warmup)
    for r in range(rounds):
        for s in setups[r % len(setups):] + setups[:r % len(setups)]:
            got = workers[s.process].run(s.name, first=warmup + r * steps, n=steps)
            times[s.name] += got["phases"]
            cpu[s.name] += got["cpu"]
            losses[s.name] += got["losses"]
            per_round[s.name].append(float(np.mean([sum(p) for p in got["phases"]])))
            images[s.name] = got["images"]
        print(f"  round {r + 1}/{rounds} done ({time.perf_counter() - started:.0f} s, load average "
              f"{os.getloadavg()[0]:.1f})", flush=True)
    base = setups[0].name
    head = f"{'setup':<24} {'imgs':>4} " + " ".join(f"{p + ' ms':>12}" for p in PHASES) + \
        f" {'step ms':>8} {'cpu/wall':>8} {'images/s':>8} {'x ' + base:>7} {'x range':>11}  losses"
    print(f"\nmedians over {rounds} rounds x {steps} steps (after {warmup} warm-up steps), interleaved; "
          f"'x {base}': per-round paired ratio of step times (median, and min-max over rounds); "
          f"cpu/wall: CPU time of the worker process (all threads) / wall time")
    print(head)
    print("-" * len(head))
    ref = setups[0]
    for s in setups:
        t = np.array(times[s.name])
        if (s.width, s.stem, s.variant) != (ref.width, ref.stem, ref.variant):
            same = "other network"
        elif losses[s.name] == losses[ref.name]:
            same = "bit-identical"
        else:
            same = f"max |d| {max(abs(a - b) for a, b in zip(losses[s.name], losses[ref.name])):.1e}"
        step_ms = float(np.median(t.sum(1))) * 1e3
        ratios = [b / x for b, x in zip(per_round[base], per_round[s.name])]
        print(f"{s.name:<24} {images[s.name]:>4} " + " ".join(f"{np.median(t[:, k]) * 1e3:>12.1f}"
                                                        for k in range(len(PHASES)))
              + f" {step_ms:>8.0f} {sum(cpu[s.name]) / t.sum():>8.2f} {images[s.name] / step_ms * 1e3:>8.1f}"
              + f" {statistics.median(ratios):>7.2f}"
              + f" {min(ratios):>5.2f}-{max(ratios):<5.2f}  {same}")


def profile(tr: BenchTrainer, step: int, rows: int) -> str:
    """torch.profiler's top operators (self CPU time) of step ``step`` of ``tr``."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        timed_step(tr, step)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=40)


def augment_blocks(trainer: BenchTrainer, blocks: list[int], rounds: int, steps: int) -> str:
    """``augment_batch`` alone for several ``CPU_BLOCK`` sizes on the same batches, interleaved; outputs compared."""
    batches = [trainer.make_batch(step) for step in range(steps)]
    ref = {}
    ms: dict[int, list[float]] = {b: [] for b in blocks}
    same = {b: True for b in blocks}
    for r in range(rounds + 1):                       # round 0: warm-up and reference outputs
        for b in blocks[r % len(blocks):] + blocks[:r % len(blocks)]:
            augment_module.CPU_BLOCK = b
            for step, (batch, n_views) in enumerate(batches):
                t0 = time.perf_counter()
                x = trainer.augment_batch(batch, step, n_views)
                if r:
                    ms[b].append((time.perf_counter() - t0) * 1e3)
                if step not in ref:
                    ref[step] = x
                same[b] &= torch.equal(ref[step], x)
    augment_module.CPU_BLOCK = trainer.setup.block
    n = len(batches[0][0].images)
    lines = [f"{'CPU_BLOCK':>9} {'ms':>8} {'images/s':>9}  output"]
    for b in blocks:
        m = statistics.median(ms[b])
        lines.append(f"{b:>9} {m:>8.1f} {n / m * 1e3:>9.0f}  {'identical' if same[b] else 'DIFFERS'}")
    return "\n".join(lines)


def run_fresh(data: dict[str, TrainingData], corpus: Path, name: str, steps: int, tmp: Path):
    """Losses and final weights of ``steps`` steps of a freshly built trainer of setup ``name``."""
    tr = make_trainer(Setup.parse(name), data, corpus, tmp)
    losses = [timed_step(tr, step)[1] for step in range(steps)]
    weights = [p.detach().contiguous() for p in tr.model.parameters()]
    return losses, weights


def check_numerics(corpus: Path, steps: int, tmp: Path) -> None:
    data: dict[str, TrainingData] = {}
    runs = {}
    for name in ("base", "base", "cl", "cl", "t1", "cl+t1", "bf16", "fused"):
        key = name if name not in runs else name + " (2nd run)"
        runs[key] = run_fresh(data, corpus, name, steps, tmp)

    def diff(a: str, b: str) -> str:
        la, wa = runs[a]
        lb, wb = runs[b]
        same = la == lb and all(torch.equal(x, y) for x, y in zip(wa, wb))
        dl = max(abs(x - y) for x, y in zip(la, lb))
        va, vb = torch.cat([w.view(-1) for w in wa]), torch.cat([w.view(-1) for w in wb])
        rel, dw = float((va - vb).norm() / va.norm()), float((va - vb).abs().max())
        return (f"{a:>6} vs {b:<14} {'bit-identical' if same else 'differs':<14} "
                f"step-1 |dloss| {abs(la[0] - lb[0]):.1e}  max |dloss| {dl:.1e}  weights: max |dw| {dw:.1e}, "
                f"|dw|/|w| {rel:.1e}")

    print(f"\nnumerics: {steps} steps from the same seed (losses {', '.join(f'{v:.5f}' for v in runs['base'][0])} "
          f"for base)")
    for a, b in (("base", "base (2nd run)"), ("cl", "cl (2nd run)"), ("base", "cl"), ("base", "t1"),
                 ("cl", "cl+t1"), ("base", "bf16"), ("base", "fused")):
        print(diff(a, b))
    print("  bf16 losses: " + ", ".join(f"{v:.5f}" for v in runs["bf16"][0]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 epilog="setups: 'base' or '+'-joined changes among cl, t<N>, bf16, fused, foreach, "
                                        "w<N>, nomaxpool, cifar, blk<N>, simclr, passive, i<N> (see the module "
                                        "docstring); the first setup is the reference of the 'x' column")
    ap.add_argument("--corpus", type=Path, default=REPO / "results" / "synth",
                    help="preprocessed corpus folder (pairs.parquet, frames/, swaps/, descriptors/)")
    ap.add_argument("--setups", nargs="+", default=list(DEFAULT_SETUPS), help="setups to compare (first: reference)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per setup first")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    ap.add_argument("--steps", type=int, default=2, help="timed steps per setup per round")
    ap.add_argument("--profile", nargs="*", default=["base", "passive"],
                    help="setups to run torch.profiler on for one step (none: skip)")
    ap.add_argument("--profile-rows", type=int, default=12)
    ap.add_argument("--blocks", type=int, nargs="*", default=[16, 32, 64, 128],
                    help="augmentation CPU_BLOCK sizes to compare (none: skip)")
    ap.add_argument("--blocks-setups", nargs="*", help="setups whose worker compares them (default: the first)")
    ap.add_argument("--check-steps", type=int, default=3, help="steps of the numerical checks (0: skip)")
    ap.add_argument("--interop", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.interop:
        torch.set_num_interop_threads(args.interop)
    if not (args.corpus / "pairs.parquet").is_file():
        raise SystemExit(f"{args.corpus}/pairs.parquet not found: run `make demo` first, or pass --corpus")
    if args.worker:
        worker(args.corpus)
        return
    setups = [Setup.parse(n) for n in args.setups]
    if len({s.name for s in setups}) != len(setups):
        raise SystemExit("--setups: each setup once")
    profiled = [Setup.parse(n) for n in args.profile]
    blocked = [Setup.parse(n) for n in (args.blocks_setups or [setups[0].name])] if args.blocks else []
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, OMP_WAIT_POLICY "
          f"{INHERITED_POLICY or 'unset'} (except 'passive'), corpus {args.corpus}; default TrainConfig (resize 72, "
          f"crop 64, batch_tracks 32)", flush=True)
    workers = {p: Worker(p, args.corpus) for p in dict.fromkeys(s.process for s in setups + profiled + blocked)}
    try:
        compare(setups, workers, args.warmup, args.rounds, args.steps)
        step = args.warmup + args.rounds * args.steps
        for s in profiled:
            workers[s.process].run(s.name, first=step - 1, n=1)       # warmed up (when not in the table)
            got = workers[s.process].run(s.name, "profile", first=step, rows=args.profile_rows)
            print(f"\ntorch.profiler, one step of {s.name}: top {args.profile_rows} operators by self CPU time")
            print(got["text"])
        for s in blocked:
            got = workers[s.process].run(s.name, "blocks", blocks=args.blocks, rounds=args.rounds, n=args.steps)
            print(f"\naugment_batch alone (both views) in {s.name}'s worker, augment.CPU_BLOCK sizes interleaved "
                  f"over {args.rounds} rounds x {args.steps} batches, median:")
            print(got["text"])
    finally:
        for w in workers.values():
            w.close()
    if args.check_steps:
        with tempfile.TemporaryDirectory() as tmp:
            check_numerics(args.corpus, args.check_steps, Path(tmp))


if __name__ == "__main__":
    main()
