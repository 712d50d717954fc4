"""Does pretraining learn expression? Train variants under chosen settings and print what the monitor saw.

Each run trains one variant for ``--steps`` steps on an already preprocessed corpus (``results/<corpus>/``,
e.g. after ``make demo``) with the monitor on (:mod:`sslfer.train.monitor`): at step 0 and every
``--monitor-every`` steps, the kNN expression macro-F1 on the evaluation set's training items and the identity
accuracy on held-out pretraining tracks. One line per run: the NT-Xent at the end against its chance level
ln(2N − 1), and the probes at step 0 (the untrained network) and at the end. Runs go to
``<out>/<setting>/<variant>/seed=<n>/`` (``monitor.jsonl``, ``metrics.jsonl``), and a summary to
``<out>/summary.jsonl``.

    python benchmarks/diagnose_training.py --steps 200 --variants simclr all --seeds 0 1 \\
        --setting base --setting strong:scale=0.3,1.0:jitter=0.8,0.8,0.8,0.2

A setting is ``name`` followed by ``:key=value`` overrides of :class:`sslfer.train.settings.TrainConfig`
fields (comma-separated values are tuples; ``none`` is None).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

import torch  # noqa: E402
import yaml  # noqa: E402

from sslfer.train.data import TrainingData  # noqa: E402
from sslfer.train.monitor import Monitor, expression_set, identity_set  # noqa: E402
from sslfer.train.settings import TrainConfig, Variant  # noqa: E402
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="synth", help="results/<corpus>/ holds the preprocessed corpus")
    ap.add_argument("--eval-set", default="results/eval/data/affectnet",
                    help="prepared evaluation set (items.parquet, crops.npy)")
    ap.add_argument("--steps", type=int, default=200)
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
    switches = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())["properties"]["pretrain"][
        "properties"]["variants"]["default"]
    corpus = ROOT / "results" / args.corpus
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    expression = expression_set(str(Path(args.eval_set) / "items.parquet"), str(Path(args.eval_set) / "crops.npy"),
                                8, 60, 0)
    data_cache: dict = {}
    print(f"{'setting':<22} {'variant':<28} {'seed':>4} {'NCE end/chance':>15} {'expr F1 0→end':>15} "
          f"{'id acc 0→end':>14} {'img/s':>6} {'min':>5}", flush=True)
    for spec in args.setting or ["base"]:
        name, overrides = parse_setting(spec)
        for variant in args.variants:
            v = Variant(**switches[variant])
            key = (v.face_swap, v.mask_fn != "off")
            if key not in data_cache:
                data = TrainingData(corpus / "pairs.parquet", corpus / "frames",
                                    corpus / "swaps" if v.face_swap else None,
                                    corpus / "descriptors" if v.mask_fn != "off" else None)
                data_cache[key] = data, identity_set(data, 4, 0)
            data, identity = data_cache[key]
            for seed in args.seeds:
                cfg = TrainConfig(variant=v, steps=args.steps, seed=seed, monitor_every=args.monitor_every,
                                  checkpoint_every=10 ** 9, **overrides)
                run_dir = out / name / variant / f"seed={seed}"
                for f in ("checkpoint.pt", "metrics.jsonl", "monitor.jsonl", "encoder.pt"):
                    (run_dir / f).unlink(missing_ok=True)
                monitor = Monitor(expression, identity, args.view[0], args.view[1])
                t0 = time.perf_counter()
                Trainer(data, cfg, run_dir, device="cpu", monitor=monitor).fit({})
                minutes = (time.perf_counter() - t0) / 60
                mon = [json.loads(ln) for ln in (run_dir / "monitor.jsonl").read_text().splitlines()]
                met = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
                last = mon[-1]
                ips = sum(m["images_per_s"] for m in met[-20:]) / len(met[-20:])
                chance = math.log(met[-1]["rows"] - 1)
                row = {"setting": name, "overrides": overrides, "variant": variant,
                       "seed": seed, "steps": args.steps, "nce_end": last.get("loss_nce"), "chance": chance,
                       "expr_f1": [m.get("expression_f1") for m in mon], "id_acc": [m.get("identity_acc") for m in mon],
                       "monitor_steps": [m["step"] for m in mon], "images_per_s": ips, "minutes": minutes,
                       "monitor_seconds": sum(m["seconds"] for m in mon)}
                with open(out / "summary.jsonl", "a") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(f"{name:<22} {variant:<28} {seed:>4} {last['loss_nce']:>6.2f}/{chance:<4.2f}"
                      f"({last['loss_nce'] / chance:.2f}) {row['expr_f1'][0]:>6.3f}→{row['expr_f1'][-1]:<6.3f} "
                      f"{row['id_acc'][0]:>6.3f}→{row['id_acc'][-1]:<6.3f} {ips:>6.0f} {minutes:>5.1f}", flush=True)


if __name__ == "__main__":
    main()
