"""Choose the evaluation view (``evaluation.view``) on the selection split, the same for every encoder.

For each candidate view (resize, centre crop) and each given encoder, features of the evaluation set's
*training* items only; a linear probe (:func:`sslfer.evaluate.probe.linear_classifier`) is fitted on a seeded,
stratified part of them and scored on the rest (the selection split). The test split is never read. Prints
macro-F1 per encoder and view, and the mean over encoders: choose the view with the best mean, so that no
encoder is favoured.

    python benchmarks/evaluation_view.py --encoders results/synth/pretrain/random/encoder.pt \\
        results/synth/pretrain/all/encoder.pt --views 64:64 72:64 80:64 96:64
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import torch  # noqa: E402

from sslfer.evaluate.features import embed_crops  # noqa: E402
from sslfer.evaluate.probe import holdout_mask, linear_classifier  # noqa: E402
from sslfer.train.model import load_encoder  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--eval-set", default="results/eval/data/affectnet")
    ap.add_argument("--encoders", nargs="+", required=True)
    ap.add_argument("--views", nargs="+", default=["64:64", "72:64", "80:64", "96:64"], help="resize:crop")
    ap.add_argument("--classes", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tab = pq.read_table(Path(args.eval_set) / "items.parquet", columns=["split", "label", "crop_index"]).to_pandas()
    ok = ((tab.split == "train") & (tab.crop_index >= 0) & (tab.label >= 0) & (tab.label < args.classes)).to_numpy()
    rows, y = tab.crop_index.to_numpy()[ok], tab.label.to_numpy()[ok].astype(np.int64)
    held = holdout_mask(y, 0.3, np.random.default_rng([args.seed, 11]))
    crops = np.load(Path(args.eval_set) / "crops.npy", mmap_mode="r")
    views = [tuple(int(v) for v in spec.split(":")) for spec in args.views]
    print(f"selection split: {int((~held).sum())} fit / {int(held.sum())} scored training items; macro-F1")
    print(f"{'encoder':<50}" + "".join(f"{f'{r}->{c}':>10}" for r, c in views))
    scores = np.zeros((len(args.encoders), len(views)))
    for i, path in enumerate(args.encoders):
        net, _ = load_encoder(path)
        for j, (resize, crop) in enumerate(views):
            x = embed_crops(net, crops, rows, resize, crop, desc="")
            res = linear_classifier(x[~held], y[~held], x[held], y[held], args.seed, args.classes, detailed=False)
            scores[i, j] = res["macro_f1"]
        print(f"{path[-50:]:<50}" + "".join(f"{s:>10.3f}" for s in scores[i]), flush=True)
    print(f"{'mean':<50}" + "".join(f"{s:>10.3f}" for s in scores.mean(0)))


if __name__ == "__main__":
    main()
