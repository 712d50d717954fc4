"""Figures for the report: training curves, confusion matrices, 2-D embeddings, the ablation chart (PNG).

What the data cannot support (a measure recorded as not computable, a panel with fewer than two finite rows)
becomes a panel or figure carrying the reason instead of an error.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..files import atomic_path  # noqa: E402


def _save(fig, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` (a PNG, atomically) and close it."""
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return Path(path)


def note_panel(ax, title: str, text: str) -> None:
    """An empty panel titled ``title`` that says ``text`` (why it has no plot)."""
    ax.set_axis_off()
    ax.text(0.5, 0.5, textwrap.fill(text, 44), ha="center", va="center", fontsize=8, transform=ax.transAxes,
            wrap=True)
    ax.set_title(title, fontsize=9)


def note_figure(out: str | Path, title: str, text: str) -> Path:
    """A one-panel figure that says why the plot ``title`` is missing."""
    fig, ax = plt.subplots(figsize=(5.5, 2.2))
    note_panel(ax, title, text)
    return _save(fig, out)


def training_curves(metrics_jsonl: str | Path, out: str | Path, title: str) -> Path:
    """Loss (total, NT-Xent with its chance level ln(2N − 1), MaskFN attraction), mean positive/negative
    similarity and learning rate per step; with a ``monitor.jsonl`` beside ``metrics_jsonl``, a fourth panel
    with the monitor's expression macro-F1 and identity accuracy (step 0 = the untrained network)."""
    rows = [json.loads(line) for line in Path(metrics_jsonl).read_text().splitlines() if line.strip()]
    monitor_file = Path(metrics_jsonl).with_name("monitor.jsonl")
    monitor = [json.loads(line) for line in monitor_file.read_text().splitlines() if line.strip()] \
        if monitor_file.is_file() else []
    step = [r["step"] for r in rows]
    fig, ax = plt.subplots(1, 4 if monitor else 3, figsize=(17 if monitor else 13, 3.4), layout="constrained")
    ax[0].plot(step, [r["loss"] for r in rows], label="loss")
    ax[0].plot(step, [r["loss_nce"] for r in rows], label="NT-Xent", alpha=0.7)
    if any(r["loss_fn"] for r in rows):
        ax[0].plot(step, [r["loss_fn"] for r in rows], label="MaskFN attraction", alpha=0.7)
    if rows and "rows" in rows[-1]:
        ax[0].axhline(np.log(rows[-1]["rows"] - 1), color="grey", ls=":", label="NT-Xent chance")
    ax[0].set_xlabel("step")
    ax[0].legend()
    ax[1].plot(step, [r["pos_sim"] for r in rows], label="positives")
    ax[1].plot(step, [r["neg_sim"] for r in rows], label="negatives")
    ax[1].set_xlabel("step")
    ax[1].set_ylabel("mean cosine")
    ax[1].legend()
    ax[2].plot(step, [r["lr"] for r in rows])
    ax[2].set_xlabel("step")
    ax[2].set_ylabel("learning rate")
    if monitor:
        for key, label in (("expression_f1", "expression macro-F1 (kNN)"), ("identity_acc", "identity acc. (kNN)")):
            points = [(m["step"], m[key]) for m in monitor if key in m]
            if points:
                ax[3].plot(*zip(*points), marker="o", label=label)
        ax[3].set_xlabel("step")
        ax[3].set_ylim(0, 1)
        ax[3].set_title("training monitor", fontsize=9)
        ax[3].legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, out)


def confusion_matrix(matrix: list[list[int]], classes: list[str], out: str | Path, title: str) -> Path:
    """Row-normalised confusion matrix (rows = true class) with counts."""
    m = np.asarray(matrix, float)
    norm = m / np.maximum(m.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(m)):
        for j in range(len(m)):
            ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _save(fig, out)


def expression_confusion(result: dict, out: str | Path, dataset: str) -> Path:
    """The confusion matrix of a linear-probe result file's ``expression``, or a note with the reason where the
    result records it as not computable."""
    expr = result["expression"]
    title = f"{dataset}, linear probe"
    if expr.get("computable") is False:
        return note_figure(out, title, f"not computable: {expr.get('reason')}")
    return confusion_matrix(expr["confusion"], result["classes"], out, f"{title} (accuracy {expr['accuracy']:.3f})")


def pca_2d(x: np.ndarray) -> np.ndarray:
    """First two principal components of the rows of ``x`` (deterministic sign); a component the data lacks
    (one feature, or one row) is 0."""
    x = np.asarray(x, np.float64)
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    vt = vt[:2] * np.sign(vt[:2, :1] + 1e-12)
    xy = x @ vt.T
    return np.hstack([xy, np.zeros((len(x), 2 - xy.shape[1]))])


def embedding_plot(x_expr: np.ndarray, expression: list[str], x_id: np.ndarray, identity: list[str],
                   out: str | Path, title: str) -> Path:
    """2-D PCA of expression-labelled features (coloured by expression) and of pretraining frames (by identity).

    Rows with non-finite features are left out (and counted in the panel title); a panel with fewer than two
    rows left says so instead of plotting.
    """
    fig, ax = plt.subplots(1, 2, figsize=(12, 5))
    for a, x, labels, name in ((ax[0], x_expr, expression, "expression"), (ax[1], x_id, identity, "identity")):
        x, labels = np.asarray(x, np.float64).reshape(len(labels), -1), np.asarray(labels, dtype=object)
        finite = np.isfinite(x).all(1)
        x, labels = x[finite], labels[finite]
        dropped = f", {int((~finite).sum())} non-finite rows left out" if not finite.all() else ""
        if len(x) < 2:
            note_panel(a, f"coloured by {name}", f"not plotted: {len(x)} row(s) with finite features{dropped}")
            continue
        xy = pca_2d(x)
        names = sorted(set(labels))
        cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
        lab = np.asarray(labels)
        for k, n in enumerate(names):
            sel = lab == n
            a.scatter(xy[sel, 0], xy[sel, 1], s=6, color=cmap(k % cmap.N), label=n if len(names) <= 12 else None)
        a.set_title(f"coloured by {name} ({len(names)}{dropped})")
        if len(names) <= 12:
            a.legend(fontsize=7, markerscale=2)
    fig.suptitle(title)
    return _save(fig, out)


def ablation_chart(rows: list[dict], metrics: list[tuple[str, str]], out: str | Path,
                   chance: dict[str, float] | None = None) -> Path:
    """Bar chart, one panel per metric, one bar per run name (mean ± std over seeds, no error bar with one
    seed); a dashed line at the metric's chance level where ``chance`` has one. A cell recorded as not
    computable (``{"computable": false, "reason"}``) gets an ``n/c`` mark instead of a bar; a metric no run has
    is a panel giving the reason."""
    fig, ax = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 4.2), squeeze=False)
    names = [r["variant"] for r in rows]
    for a, (key, label) in zip(ax[0], metrics):
        cells = [r.get(key) for r in rows]
        have = [isinstance(c, dict) and "mean" in c for c in cells]
        nc = [isinstance(c, dict) and c.get("computable") is False for c in cells]
        if not any(have):
            reasons = sorted({str(c.get("reason")) for c, n in zip(cells, nc) if n})
            note_panel(a, label, "not computable: " + "; ".join(reasons) if reasons else "no values")
            continue
        mean = [c["mean"] if h else np.nan for c, h in zip(cells, have)]
        std = [(c["std"] or 0) if h else 0 for c, h in zip(cells, have)]   # std None: one seed
        a.bar(range(len(rows)), mean, yerr=std, color="tab:blue", alpha=0.8)
        for i in np.flatnonzero(nc):
            a.text(i, 0, "n/c", ha="center", va="bottom", fontsize=7, rotation=90, color="tab:red")
        a.set_xticks(range(len(rows)), names, rotation=60, ha="right", fontsize=7)
        if chance and key in chance:
            a.axhline(chance[key], color="grey", linestyle="--", linewidth=1, label="chance")
            a.legend(fontsize=7, loc="lower right")
        a.set_title(label, fontsize=9)
    return _save(fig, out)


def write_figures(inputs: dict, outputs: dict, run: str) -> None:
    """Training curves, confusion matrices and the 2-D embedding plot of one run (the ``figures`` rule's files)."""
    import pyarrow.parquet as pq

    from .features import features_numpy
    from .protocol import AFFECTNET_CLASSES

    training_curves(Path(inputs["encoder"]).parent / "metrics.jsonl", outputs["training"], f"pretraining: {run}")
    for name in ("affectnet", "fer2013"):          # the confusion matrix, or the reason it is not computable
        expression_confusion(json.loads(Path(inputs[name]).read_text()), outputs[name], name)
    items = pq.read_table(inputs["affectnet_items"]).to_pandas()
    x = features_numpy(pq.read_table(inputs["affectnet_features"]).column("feature"))
    sel = np.isfinite(x).all(1) & (items.split == "test").to_numpy() & items.label.between(0, 7).to_numpy()
    corpus = pq.read_table(inputs["corpus_features"])
    embedding_plot(x[sel], [AFFECTNET_CLASSES[k] for k in items.label[sel]], features_numpy(corpus.column("feature")),
                   corpus.column("identity").to_pylist(), outputs["embedding"], f"frozen features of {run} (PCA)")
