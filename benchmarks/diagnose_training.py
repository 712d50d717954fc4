"""Does pretraining learn expression? Train variants under chosen settings and print what the monitor saw.

Each run trains one variant for ``--steps`` steps on an already preprocessed corpus (``results/<corpus>/``,
e.g. after ``make demo``) with the monitor on (:mod:`sslfer.train.monitor`): at step 0 and every
``--monitor-every`` steps, the kNN expression macro-F1 on the evaluation set's training items and the identity
accuracy on held-out pretraining tracks. One line per run: the NT-Xent at the end against its chance level
ln(2N − 1), the probes at step 0 (the untrained network) and at the end, and the linear probe's macro-F1 on
the selection split (a seeded 30 % of the evaluation set's *training* items, the probe fitted on the rest; the
test split is never read) for the untrained network and the trained one. Runs go to
``<out>/<setting>/<variant>/seed=<n>/`` (``monitor.jsonl``, ``metrics.jsonl``), and a summary to
``<out>/summary.jsonl``.

    python benchmarks/diagnose_training.py --steps 200 --variants simclr all --seeds 0 1 \\
        --setting base --setting strong:scale=0.3,1.0:jitter=0.8,0.8,0.8,0.2

A setting is ``name`` followed by ``:key=value`` overrides of :class:`sslfer.train.settings.TrainConfig`
fields (comma-separated values are tuples; ``none`` is None). Every other field is what the workflow would
train with: the ``pretrain`` section of ``--config`` (default ``config/config.yaml``) with the schema's
defaults filled in.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

import torch  # noqa: E402
import yaml  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from sslfer.config import prepare_config  # noqa: E402
from sslfer.evaluate.features import embed_crops  # noqa: E402
from sslfer.evaluate.probe import holdout_mask, linear_classifier  # noqa: E402
from sslfer.train.data import TrainingData  # noqa: E402
from sslfer.train.model import load_encoder, random_encoder  # noqa: E402
from sslfer.train.monitor import Monitor, expression_set, identity_set  # noqa: E402
from sslfer.train.settings import TrainConfig  # noqa: E402
from sslfer.train.trainer import Trainer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def parse_value(text: str, kind: type | str):
    """A command-line override's value for a TrainConfig field of type ``kind``."""
    if text.lower() == "none":
        return None
    if "," in text:
        return tuple(float(v) for v in text.split(","))
    if "int" in str(kind):
        return int(text)
    if "float" in str(kind):
        return float(text)
    if "bool" in str(kind):
        return text.lower() in ("1", "true", "yes")
    return text


def parse_setting(spec: str) -> tuple[str, dict]:
    """``name:key=value:…`` → (name, overrides)."""
    name, *pairs = spec.split(":")
    types = {f.name: f.type for f in fields(TrainConfig)}
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in types:
            raise SystemExit(f"unknown TrainConfig field {key!r} (one of {', '.join(types)})")
        out[key] = parse_value(value, types[key])
    return name, out


class SelectionProbe:
    """Linear-probe macro-F1 on the selection split of the evaluation set's training items."""

    def __init__(self, eval_set: str, view: tuple[int, int], n_classes: int = 8, seed: int = 0) -> None:
        tab = pq.read_table(Path(eval_set) / "items.parquet", columns=["split", "label", "crop_index"]).to_pandas()
        ok = ((tab.split == "train") & (tab.crop_index >= 0) & (tab.label >= 0) & (tab.label < n_classes)).to_numpy()
        self.rows, self.y = tab.crop_index.to_numpy()[ok], tab.label.to_numpy()[ok].astype(np.int64)
        self.held = holdout_mask(self.y, 0.3, np.random.default_rng([seed, 11]))
        self.crops = np.load(Path(eval_set) / "crops.npy", mmap_mode="r")
        self.view, self.n_classes, self.seed = view, n_classes, seed

    def __call__(self, encoder_path: str | Path) -> float:
        net, _ = load_encoder(str(encoder_path))
        x = embed_crops(net, self.crops, self.rows, self.view[0], self.view[1], desc="")
        h = self.held
        return float(linear_classifier(x[~h], self.y[~h], x[h], self.y[h], self.seed, self.n_classes,
                                       detailed=False)["macro_f1"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="config/config.yaml", help="the configuration whose pretrain section is the base")
    ap.add_argument("--corpus", default="synth", help="results/<corpus>/ holds the preprocessed corpus")
    ap.add_argument("--eval-set", default="results/eval/data/affectnet",
                    help="prepared evaluation set (items.parquet, crops.npy)")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--monitor-every", type=int, default=50)
    ap.add_argument("--variants", nargs="+", default=["simclr", "all"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--setting", action="append", default=[], help="name[:key=value]… (repeatable; default: base)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--view", nargs=2, type=int, default=[72, 64], metavar=("RESIZE", "CROP"),
                    help="how the monitor sees crops (evaluation.view)")
    ap.add_argument("--out", default="results/diagnosis")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    config = prepare_config(yaml.safe_load(Path(args.config).read_text()), ROOT / "config" / "schema.yaml",
                            check_inputs=False)
    pre = config["pretrain"]
    shaping = {k: v for k, v in pre.items() if k not in ("variant", "variants", "threads", "checkpoint_every",
                                                           "monitor_every")}
    corpus = ROOT / "results" / args.corpus
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    expression = expression_set(str(Path(args.eval_set) / "items.parquet"), str(Path(args.eval_set) / "crops.npy"),
                                8, 60, 0)
    probe = SelectionProbe(args.eval_set, tuple(args.view))
    floors: dict = {}
    data_cache: dict = {}
    print(f"{'setting':<22} {'variant':<28} {'seed':>4} {'NCE end/chance':>15} {'expr F1 0→end':>15} "
          f"{'id acc 0→end':>14} {'linear 0→end':>14} {'img/s':>6} {'min':>5}", flush=True)
    for spec in args.setting or ["base"]:
        name, overrides = parse_setting(spec)
        for variant in args.variants:
            base = TrainConfig.from_config({**shaping, "switches": pre["variants"][variant]}, 0, 10 ** 9,
                                           args.monitor_every)
            v = base.variant
            key = (v.face_swap, v.mask_fn != "off")
            if key not in data_cache:
                data = TrainingData(corpus / "pairs.parquet", corpus / "frames",
                                    corpus / "swaps" if v.face_swap else None,
                                    corpus / "descriptors" if v.mask_fn != "off" else None)
                data_cache[key] = data, identity_set(data, 4, 0)
            data, identity = data_cache[key]
            for seed in args.seeds:
                cfg = replace(base, steps=args.steps, seed=seed, monitor_every=args.monitor_every,
                              checkpoint_every=10 ** 9, **overrides)
                run_dir = out / name / variant / f"seed={seed}"
                for f in ("checkpoint.pt", "metrics.jsonl", "monitor.jsonl", "encoder.pt"):
                    (run_dir / f).unlink(missing_ok=True)
                monitor = Monitor(expression, identity, args.view[0], args.view[1])
                t0 = time.perf_counter()
                Trainer(data, cfg, run_dir, device="cpu", monitor=monitor).fit({})
                minutes = (time.perf_counter() - t0) / 60
                floor_key = (seed, cfg.width, cfg.stem)
                if floor_key not in floors:
                    path = out / "untrained" / f"seed={seed}_w{cfg.width}_{cfg.stem}.pt"
                    random_encoder(path, cfg.backbone, seed, {"variant": "random", "seed": seed}, cfg.width, cfg.stem)
                    floors[floor_key] = probe(path)
                linear = (floors[floor_key], probe(run_dir / "encoder.pt"))
                mon = [json.loads(ln) for ln in (run_dir / "monitor.jsonl").read_text().splitlines()]
                met = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
                last = mon[-1]
                ips = sum(m["images_per_s"] for m in met[-20:]) / len(met[-20:])
                chance = math.log(met[-1]["rows"] - 1)
                row = {"setting": name, "overrides": overrides, "variant": variant,
                       "seed": seed, "steps": args.steps, "nce_end": last.get("loss_nce"), "chance": chance,
                       "expr_f1": [m.get("expression_f1") for m in mon], "id_acc": [m.get("identity_acc") for m in mon],
                       "monitor_steps": [m["step"] for m in mon], "images_per_s": ips, "minutes": minutes,
                       "linear_selection": linear,
                       "monitor_seconds": sum(m["seconds"] for m in mon)}
                with open(out / "summary.jsonl", "a") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(f"{name:<22} {variant:<28} {seed:>4} {last['loss_nce']:>6.2f}/{chance:<4.2f}"
                      f"({last['loss_nce'] / chance:.2f}) {row['expr_f1'][0]:>6.3f}→{row['expr_f1'][-1]:<6.3f} "
                      f"{row['id_acc'][0]:>6.3f}→{row['id_acc'][-1]:<6.3f} {linear[0]:>6.3f}→{linear[1]:<6.3f} "
                      f"{ips:>6.0f} {minutes:>5.1f}", flush=True)


if __name__ == "__main__":
    main()
