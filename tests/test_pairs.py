"""pairs.parquet and the per-epoch sampler: offsets, gaps, flags, determinism, on real and constructed tracks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sslfer.pairs.index import build_pairs
from sslfer.pairs.sampler import PairsIndex, offset_weights
from sslfer.parquet import write_parquet

CFG = {"positive_s": [0.48, 1.44], "hard_negative_min_s": 2.88, "distribution": "c"}
STEP = 0.24          # 25/6 fps sampling of a 25 fps video: every 6th frame


def _write_shard(root: Path, shard: int, rows: list[dict]) -> Path:
    path = root / f"shard={shard:05d}" / "frames.parquet"
    tab = pa.table({"video_id": [r["video_id"] for r in rows], "identity": [r["video_id"][:7] for r in rows],
                    "frame_idx": pa.array([r["frame_idx"] for r in rows], pa.int64()),
                    "t_s": pa.array([r["frame_idx"] / 25 for r in rows], pa.float64()),
                    "status": [r["status"] for r in rows],
                    "crop_index": pa.array([i if r["status"] == "ok" else -1 for i, r in enumerate(rows)], pa.int64())})
    write_parquet(tab, path, {"rule": "test"})
    return path


def _track(video_id: str, seconds: float, bad: tuple[int, ...] = ()) -> list[dict]:
    n = int(round(seconds / STEP)) + 1
    return [{"video_id": video_id, "frame_idx": 6 * i, "status": "no_face" if i in bad else "ok"} for i in range(n)]


@pytest.fixture(scope="module")
def constructed(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    shard0 = _track("id00001/aaaaaaaaaaa/00001", 8.0, bad=(3, 4, 5)) + _track("id00001/aaaaaaaaaaa/00002", 2.0)
    shard1 = _track("id00002/bbbbbbbbbbb/00001", 0.24) + _track("id00002/bbbbbbbbbbb/00002", 4.0, bad=tuple(range(18)))
    files = [_write_shard(root, 0, shard0), _write_shard(root, 1, shard1)]
    vids = ["id00001/aaaaaaaaaaa/00001", "id00001/aaaaaaaaaaa/00002", "id00002/bbbbbbbbbbb/00001",
            "id00002/bbbbbbbbbbb/00002", "id00002/bbbbbbbbbbb/00003"]
    manifest = root / "videos.parquet"
    write_parquet(pa.table({"video_id": vids, "identity": [v[:7] for v in vids],
                            "shard": pa.array([0, 0, 1, 1, 1], pa.int64()),
                            "status": ["ok", "too_short", "too_short", "ok", "probe_error"],
                            "error": [None, None, None, None, "x.mp4: moov atom not found"]}), manifest, {})
    table = build_pairs(manifest, files, CFG)
    path = root / "pairs.parquet"
    write_parquet(table, path, {"config": {"pairs": CFG}})
    return table, path


def test_every_track_is_listed_and_flagged(constructed):
    df = constructed[0].to_pandas().set_index("video_id")
    assert list(df.status) == ["ok", "no_hard_neg", "no_time_aug", "no_frames", "no_frames"]
    assert "moov atom" in df.loc["id00002/bbbbbbbbbbb/00003", "error"]
    assert "too short for HardNeg" in df.loc["id00001/aaaaaaaaaaa/00002", "error"]
    assert df.loc["id00001/aaaaaaaaaaa/00001", "n_usable"] == 34 - 3
    assert df.loc["id00002/bbbbbbbbbbb/00002", "n_sampled"] == 18


def test_partners_respect_offsets_and_gaps(constructed):
    row = constructed[0].to_pandas().iloc[0]
    t = np.asarray(row.t_s)
    assert not np.isin(np.round(t / STEP).astype(int), [3, 4, 5]).any()      # failed frames never partners
    for i, (pos, off) in enumerate(zip(row.pos_index, row.pos_offset_s)):
        dt = t[pos] - t[i]
        assert np.allclose(dt, off, atol=1e-5) and ((np.abs(dt) > 0.479) & (np.abs(dt) < 1.441)).all()
        # every frame at a positive offset is listed (offsets 2..6 steps)
        want = [j for j in range(len(t)) if 0.479 < abs(t[j] - t[i]) < 1.441]
        assert sorted(pos) == want
        far = np.r_[0:row.neg_before_end[i], row.neg_after_start[i]:len(t)]
        assert (np.abs(t[far] - t[i]) >= 2.88 - 1e-6).all()
        near = np.setdiff1d(np.arange(len(t)), far)
        assert (np.abs(t[near] - t[i]) < 2.88 - 1e-6).all()


def test_sampler_draws_within_windows_and_is_seeded(constructed):
    idx = PairsIndex.read(str(constructed[1]))
    draws = [idx.draw(seed=3, epoch=e, time_aug=True, hard_neg=True) for e in range(300)]
    assert all(list(d.track) == [0] for d in draws)            # only the 8 s track has HardNeg
    t = idx.frame_t
    a = np.array([d.anchor[0] for d in draws])
    p = np.array([d.positive[0] for d in draws])
    na = np.array([d.neg_anchor[0] for d in draws])
    npos = np.array([d.neg_positive[0] for d in draws])
    for x, y in ((a, p), (na, npos)):
        dt = np.abs(t[y] - t[x])
        assert ((dt > 0.479) & (dt < 1.441)).all()
    assert (np.abs(t[na] - t[a]) >= 2.88 - 1e-6).all()
    assert (idx.frame_track[np.r_[a, p, na, npos]] == 0).all() and (idx.frame_crop[np.r_[a, p, na, npos]] >= 0).all()
    # distribution 'c': the shortest offset (2 steps) is drawn most, the longest (6 steps) least
    steps = np.round(np.abs(t[p] - t[a]) / STEP).astype(int)
    freq = np.bincount(steps, minlength=7)[2:]
    assert freq[0] > freq[-1] * 2
    # fresh draws per epoch, reproducible per (seed, epoch)
    assert len(set(a.tolist())) > 10
    again = idx.draw(seed=3, epoch=7, time_aug=True, hard_neg=True)
    assert again.anchor[0] == draws[7].anchor[0] and again.neg_positive[0] == draws[7].neg_positive[0]


def test_sampler_variants(constructed):
    idx = PairsIndex.read(str(constructed[1]))
    simclr = idx.draw(0, 0, time_aug=False, hard_neg=False)
    assert list(simclr.track) == [0, 1, 2] and (simclr.anchor == simclr.positive).all() and (simclr.neg_anchor == -1).all()
    ta = idx.draw(0, 0, time_aug=True, hard_neg=False)
    assert list(ta.track) == [0, 1] and (ta.anchor != ta.positive).all()
    hn = idx.draw(0, 0, time_aug=False, hard_neg=True)
    assert list(hn.track) == [0] and hn.neg_anchor[0] == hn.neg_positive[0]
    assert abs(idx.frame_t[hn.neg_anchor[0]] - idx.frame_t[hn.anchor[0]]) >= 2.88 - 1e-6


def test_offset_weights_match_the_reference():
    d = np.arange(2, 7) / (25 / 6)
    for mode, ref in (("a", [1, 1, 1, 1, 1]), ("b", [1, 2, 3, 4, 5]), ("c", [5, 4, 3, 2, 1])):
        assert np.allclose(offset_weights(d, (0.48, 1.44), mode), ref)
    with pytest.raises(ValueError, match="distribution"):
        offset_weights(d, (0.48, 1.44), "d")


def test_pairs_on_processed_frames_are_deterministic(processed, video_manifest, tmp_path):
    frames = tmp_path / "shard=00000" / "frames.parquet"
    frames.parent.mkdir()
    frames.write_bytes((processed[0] / "frames.parquet").read_bytes())
    manifest = tmp_path / "videos.parquet"
    pq.write_table(video_manifest.set_column(video_manifest.schema.get_field_index("shard"), "shard",
                                             pa.array(np.zeros(video_manifest.num_rows, np.int64))), manifest)
    shas = []
    for k in range(2):
        out = tmp_path / f"pairs{k}.parquet"
        write_parquet(build_pairs(manifest, [frames], CFG), out, {"config": {"pairs": CFG}})
        shas.append(hashlib.sha256(out.read_bytes()).hexdigest())
    assert shas[0] == shas[1]
    df = pq.read_table(tmp_path / "pairs0.parquet").to_pandas()
    # 4-4.5 s synthetic tracks at 25/6 fps: every track supports TimeAug and HardNeg
    assert len(df) == video_manifest.num_rows and (df.status == "ok").all()
    assert df.n_usable.sum() == (processed[2].status == "ok").sum()
