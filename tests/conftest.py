"""Shared fixtures: a tiny synthetic corpus generated once per test session by the real code."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "tests" / "data" / "tiny.yaml"


def tiny_synth_config() -> dict:
    """The ``synth`` section of tests/data/tiny.yaml with the schema defaults filled in."""
    from sslfer.config import prepare_config

    cfg = yaml.safe_load(TINY_CONFIG.read_text())
    return prepare_config(cfg, REPO / "config" / "schema.yaml", base=REPO)["synth"]


@pytest.fixture(scope="session")
def synth_cfg() -> dict:
    return tiny_synth_config()


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory, synth_cfg) -> Path:
    """resources/synth-like tree of the tiny config, seed 0, rendered with 2 workers."""
    from sslfer.synth import corpus

    root = tmp_path_factory.mktemp("synth")
    corpus.write_videos(root, synth_cfg["videos"], seed=0, workers=2)
    corpus.write_affectnet(root, synth_cfg["affectnet"], seed=0, workers=2)
    corpus.write_fer2013(root, synth_cfg["fer2013"], seed=0, workers=2)
    corpus.write_lfw(root, synth_cfg["lfw"], seed=0, workers=2)
    return root


@pytest.fixture(scope="session")
def video_manifest(tiny_corpus):
    """Manifest of the tiny corpus's videos (6 videos, shards of 4)."""
    from sslfer.preprocess.manifest import build_manifest

    return build_manifest("video_tree", tiny_corpus / "voxceleb" / "videos", None, shard_size=4, min_duration_s=3.5)


@pytest.fixture(scope="session")
def processed(video_manifest, tmp_path_factory):
    """(dir, status counts, frames DataFrame, crops memmap): every tiny video processed as one shard with the
    default backends; ``dir`` holds ``frames.parquet`` and ``crops.npy``."""
    import numpy as np
    import pyarrow.parquet as pq

    from sslfer.preprocess.shard import ShardConfig, process_shard

    tmp = tmp_path_factory.mktemp("shard")
    counts = process_shard(video_manifest, ShardConfig(), tmp / "frames.parquet", tmp / "crops.npy", {"rule": "test"})
    return tmp, counts, pq.read_table(tmp / "frames.parquet").to_pandas(), np.load(tmp / "crops.npy", mmap_mode="r")


@pytest.fixture
def snakemake_all(tmp_path):
    """``run(config) -> (returncode, output, work)``: `snakemake all` with ``config`` (a dict, written to a file)
    in a fresh working folder; for tests of what stops a run before any job starts."""
    import subprocess
    import sys

    def run(config: dict):
        cfg = tmp_path / "given.yaml"
        cfg.write_text(yaml.safe_dump(config))
        work = tmp_path / "work"
        work.mkdir(exist_ok=True)
        proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
                               str(work), "--configfile", str(cfg), "--cores", "1", "all"],
                              capture_output=True, text=True, timeout=120)
        return proc.returncode, proc.stdout + proc.stderr, work

    return run


# --------------------------------------------------------------------------------------------- pretraining inputs
#: The pairs settings of the pretraining tests (the reference's offsets at 25/6 fps).
PAIRS_CFG = {"positive_s": [0.48, 1.44], "hard_negative_min_s": 2.88, "distribution": "c"}


@pytest.fixture(scope="session")
def pretrain_corpus(processed, video_manifest, tmp_path_factory) -> Path:
    """A results/{corpus}-like folder of the tiny corpus: one shard (its real frames and crops) and its
    pairs.parquet (3 identities, 2 tracks each)."""
    import shutil

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sslfer.pairs.index import build_pairs
    from sslfer.parquet import write_parquet

    root = tmp_path_factory.mktemp("pretrain_corpus")
    shard = root / "frames" / "shard=00000"
    shard.mkdir(parents=True)
    for name in ("frames.parquet", "crops.npy"):
        shutil.copy(processed[0] / name, shard / name)
    manifest = root / "videos.parquet"
    pq.write_table(video_manifest.set_column(video_manifest.schema.get_field_index("shard"), "shard",
                                             pa.array(np.zeros(video_manifest.num_rows, np.int64))), manifest)
    write_parquet(build_pairs(manifest, [shard / "frames.parquet"], PAIRS_CFG), root / "pairs.parquet",
                  {"config": {"pairs": PAIRS_CFG}})
    return root


@pytest.fixture(scope="session")
def affectnet_prepared(tiny_corpus, tmp_path_factory) -> tuple[Path, Path]:
    """(items.parquet, crops.npy) of the tiny synthetic AffectNet, prepared by the real evaluation code."""
    from sslfer.config import prepare_config
    from sslfer.evaluate.faces import prepare_dataset

    config = yaml.safe_load(TINY_CONFIG.read_text())
    pre = prepare_config(config, REPO / "config" / "schema.yaml", base=REPO)["preprocess"]
    out = tmp_path_factory.mktemp("affectnet_prepared")
    prepare_dataset("affectnet", {"format": "affectnet_csv", "path": str(tiny_corpus / "affectnet")}, pre,
                    out / "items.parquet", out / "crops.npy", {"rule": "test"})
    return out / "items.parquet", out / "crops.npy"


#: The coded corpus's tracks: (identity, seconds, shard); seconds 0 = a track whose frames all failed.
CODED_TRACKS = [("id00000", 6.0, 0),
                ("id00001", 6.0, 0), ("id00001", 4.0, 1),
                ("id00002", 5.0, 0), ("id00002", 7.0, 1), ("id00002", 2.0, 1),
                ("id00003", 4.0, 0), ("id00003", 5.0, 1), ("id00003", 6.0, 0), ("id00003", 7.0, 1), ("id00003", 8.0, 0),
                ("id00004", 6.0, 1), ("id00004", 0.0, 1)]
CODED_STEP = 0.24          # 25/6 fps: every 6th frame of a 25 fps video
CODED_SIZE = 16            # crop side


def coded_decode(images):
    """(track, frame position) of uint8 ``(B, S, S, 3)`` coded crops (or float ``(B, 3, S, S)`` in [0, 1]):
    channel 0 holds the track's manifest row, channel 1 the frame's position in its track."""
    import numpy as np
    import torch

    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    if images.dtype != np.uint8:                     # float (B, 3, S, S) in [0, 1]
        images = np.rint(np.moveaxis(images, 1, -1) * 255).astype(np.int64)
    track, frame = images[..., 0].astype(np.int64), images[..., 1].astype(np.int64)
    assert (track == track[:, :1, :1]).all() and (frame == frame[:, :1, :1]).all(), "not a coded crop"
    return track[:, 0, 0], frame[:, 0, 0]


@pytest.fixture(scope="session")
def coded_corpus(tmp_path_factory):
    """A results/{corpus}-like folder whose crops say where they come from: every pixel of the crop of frame
    ``i`` (t = i · 0.24 s) of manifest row ``k`` is (k, i, 17·identity + 3). Two shards; no landmarks."""
    from types import SimpleNamespace

    import numpy as np
    import pyarrow as pa

    from sslfer.pairs.index import build_pairs
    from sslfer.parquet import LANDMARKS_TYPE, write_parquet

    root = tmp_path_factory.mktemp("coded_corpus")
    vids = [f"{person}/clip{k:07d}/00001" for k, (person, _, _) in enumerate(CODED_TRACKS)]
    frame_files = []
    for shard in sorted({s for _, _, s in CODED_TRACKS}):
        rows, crops = [], []
        for k, (person, seconds, s) in enumerate(CODED_TRACKS):
            if s != shard:
                continue
            n = int(round(max(seconds, 2.0) / CODED_STEP)) + 1
            for i in range(n):
                ok = seconds > 0
                rows.append({"video_id": vids[k], "identity": person, "frame_idx": 6 * i, "t_s": 6 * i / 25,
                             "status": "ok" if ok else "no_face", "crop_index": len(crops) if ok else -1})
                if ok:
                    crops.append(np.broadcast_to(np.array([k, i, 17 * int(person[2:]) + 3], np.uint8),
                                                 (CODED_SIZE, CODED_SIZE, 3)))
        d = root / "frames" / f"shard={shard:05d}"
        d.mkdir(parents=True)
        tab = pa.table({"video_id": [r["video_id"] for r in rows], "identity": [r["identity"] for r in rows],
                        "frame_idx": pa.array([r["frame_idx"] for r in rows], pa.int64()),
                        "t_s": pa.array([r["t_s"] for r in rows], pa.float64()),
                        "status": [r["status"] for r in rows],
                        "crop_index": pa.array([r["crop_index"] for r in rows], pa.int64()),
                        "landmarks_crop": pa.array([None] * len(rows), LANDMARKS_TYPE)})
        write_parquet(tab, d / "frames.parquet", {"rule": "test"})
        np.save(d / "crops.npy", np.stack(crops))
        frame_files.append(d / "frames.parquet")
    manifest = root / "videos.parquet"
    write_parquet(pa.table({"video_id": vids, "identity": [p for p, _, _ in CODED_TRACKS],
                            "shard": pa.array([s for _, _, s in CODED_TRACKS], pa.int64()),
                            "status": ["ok"] * len(vids), "error": [None] * len(vids)}), manifest, {})
    write_parquet(build_pairs(manifest, frame_files, PAIRS_CFG), root / "pairs.parquet",
                  {"config": {"pairs": PAIRS_CFG}})
    return SimpleNamespace(root=root, pairs=root / "pairs.parquet", frames=root / "frames", tracks=CODED_TRACKS,
                           step=CODED_STEP, size=CODED_SIZE, cfg=PAIRS_CFG, decode=coded_decode)
