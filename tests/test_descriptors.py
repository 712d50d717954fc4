"""MaskFN eye/mouth descriptors on preprocessed synthetic video frames (sslfer.descriptors)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from sslfer.model_files import ModelFileError
from sslfer.descriptors.backends import DescriptorConfig
from sslfer.files import sha256_file
from sslfer.descriptors.patches import extract_patches, region_boxes
from sslfer.descriptors.quality import chance_agreement, nn_agreement, with_truth
from sslfer.descriptors.shard import describe_shard
from sslfer.parquet import landmarks_numpy, read_provenance

#: 8 identities × two 4–4.5 s clips, rendered at 5 fps (cheap; the shard samples 25/6 fps: ~285 frames), with
#: short expression episodes so that so few clips still show every class several times (the default 2–4 s
#: holds show one or two classes per clip; on the default 48-track corpus the figure is 0.53, chance 0.15).
CORPUS = {"identities": 8, "clips_per_identity": 2, "utterances_per_clip": 1, "duration_s": [4.0, 4.5], "fps": 5,
          "expression_hold_s": [0.5, 1.6]}


@pytest.fixture(scope="module")
def shard(tmp_path_factory, synth_cfg) -> Path:
    """A preprocessed shard (frames.parquet, crops.npy) of an 8-identity corpus, with its ground truth
    (detection with the tracked-face speed option: 4× faster here; NN figure 0.74 vs 0.75 without it)."""
    from sslfer.preprocess.manifest import build_manifest
    from sslfer.preprocess.shard import ShardConfig, process_shard
    from sslfer.synth import corpus

    root = tmp_path_factory.mktemp("descriptors")
    corpus.write_videos(root / "synth", {**synth_cfg["videos"], **CORPUS}, seed=0, workers=2)
    manifest = build_manifest("video_tree", root / "synth" / "voxceleb" / "videos", None, shard_size=100)
    process_shard(manifest, ShardConfig(track_face_px=85), root / "frames.parquet", root / "crops.npy", {"rule": "test"})
    return root


@pytest.fixture(scope="module")
def described(shard) -> tuple[Path, pa.Table]:
    out = shard / "descriptors.parquet"
    describe_shard(shard / "frames.parquet", shard / "crops.npy", out, DescriptorConfig(), {"rule": "test"})
    return out, pq.read_table(out)


def _grey_thumbnails(images: np.ndarray) -> np.ndarray:
    """16×16 grey pixels of each RGB image, flattened: the trivial baseline descriptor."""
    return np.stack([cv2.resize(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), (16, 16), interpolation=cv2.INTER_AREA).ravel()
                     for im in images])


def test_nearest_neighbour_shares_expression(described, shard):
    """A frame's nearest neighbour among other identities shows the same expression far above chance and
    above raw pixels. Measured (seed 0, 284 frames): 0.76 vs 16×16 crop pixels 0.35, eye+mouth patch pixels
    0.56, chance 0.22 (the first corpus's episode timing: 0.74, 0.25, 0.46, 0.20). All frames count, neutral included
    (the largest class; weak expression onsets are labelled neutral, a source of honest disagreement)."""
    _, table = described
    truth = with_truth(table, str(shard / "synth" / "groundtruth" / "videos.parquet"))
    rows = np.flatnonzero(truth["status"].to_numpy() == "ok")
    y, ident = truth["expression"].to_numpy()[rows], truth["identity"].to_numpy()[rows]
    assert len(rows) >= 150 and len(set(ident)) == CORPUS["identities"]
    agree = nn_agreement(np.stack(truth["descriptor"].to_numpy()[rows]), y, ident)
    chance = chance_agreement(y)
    frames = pq.read_table(shard / "frames.parquet")
    crops = np.load(shard / "crops.npy", mmap_mode="r")[frames["crop_index"].to_numpy()[rows]]
    eyes, mouths = extract_patches(crops, landmarks_numpy(frames["landmarks_crop"])[rows])
    baseline = nn_agreement(_grey_thumbnails(crops), y, ident)
    patch_baseline = nn_agreement(np.concatenate([_grey_thumbnails(eyes), _grey_thumbnails(mouths)], 1), y, ident)
    print(f"NN expression agreement: geometry_hog {agree:.3f}, crop pixels {baseline:.3f}, "
          f"patch pixels {patch_baseline:.3f}, chance {chance:.3f} (n={len(y)})")
    assert agree >= 0.6
    assert agree >= 3 * chance
    assert agree >= baseline + 0.25
    assert agree >= patch_baseline + 0.12


def test_descriptor_columns(described, shard):
    out, table = described
    frames = pq.read_table(shard / "frames.parquet")
    assert table.num_rows == frames.num_rows
    assert table["video_id"].to_pylist() == frames["video_id"].to_pylist()
    assert table["frame_idx"].to_pylist() == frames["frame_idx"].to_pylist()
    prov = read_provenance(out)
    de, dm = prov["dims"]
    assert prov["backend"] == "geometry_hog"
    assert table.schema.field("descriptor").type == pa.list_(pa.float32(), de + dm)
    ok = table.filter(pc.equal(table["status"], "ok"))
    d = np.stack(ok["descriptor"].to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-5)
    eye, mouth = (np.stack(ok[k].to_numpy(zero_copy_only=False)) for k in ("eye", "mouth"))
    both = np.concatenate([eye, mouth], axis=1)
    np.testing.assert_allclose(d, both / np.linalg.norm(both, axis=1, keepdims=True), atol=1e-6)


def _break_frames(shard: Path, out: Path) -> tuple[Path, set[int], set[int]]:
    """frames.parquet with failed frames: 5 scattered rows lose their crop (as ``no_face`` frames do) and
    one track keeps only 3 frames with crops. Returns (path, rows without crop, rows of the short track)."""
    frames = pq.read_table(shard / "frames.parquet")
    vids = np.asarray(frames["video_id"].to_pylist())
    short = np.flatnonzero(vids == vids[-1])
    drop = set(np.flatnonzero(frames["crop_index"].to_numpy() >= 0)[[3, 20, 41, 77, 101]].tolist()) | set(short[3:].tolist())
    mask = pa.array([i in drop for i in range(frames.num_rows)])
    frames = frames.set_column(frames.schema.get_field_index("crop_index"), "crop_index",
                               pc.if_else(mask, -1, frames["crop_index"]))
    frames = frames.set_column(frames.schema.get_field_index("status"), "status",
                               pc.if_else(mask, "no_face", frames["status"]))
    lmc = frames["landmarks_crop"].combine_chunks()
    frames = frames.set_column(frames.schema.get_field_index("landmarks_crop"), "landmarks_crop",
                               pc.if_else(mask, pa.nulls(len(lmc), lmc.type), lmc))
    pq.write_table(frames, out)
    return out, drop, set(short[:3].tolist())


def test_failed_frames_get_no_descriptor_and_rerun_is_identical(shard, tmp_path):
    frames_path, dropped, short = _break_frames(shard, tmp_path / "frames.parquet")
    out = tmp_path / "a.parquet"
    counts = describe_shard(frames_path, shard / "crops.npy", out, DescriptorConfig(min_track_frames=8), {"rule": "test"})
    table = pq.read_table(out)
    n_in = pq.read_metadata(frames_path).num_rows
    assert table.num_rows == n_in and sum(counts.values()) == n_in
    status = table["status"].to_pylist()
    assert {i for i, s in enumerate(status) if s == "no_landmarks"} == dropped
    assert {i for i, s in enumerate(status) if s == "short_track"} == short
    assert counts["no_landmarks"] == len(dropped) and counts["short_track"] == 3
    for i in dropped | short:
        assert table["descriptor"][i].as_py() is None and table["eye"][i].as_py() is None
        err = table["error"][i].as_py()
        assert table["video_id"][i].as_py() in err and f"frame {table['frame_idx'][i].as_py()}" in err
    ok = [i for i, s in enumerate(status) if s == "ok"]
    assert ok and all(table["descriptor"][i].as_py() is not None for i in ok)
    assert read_provenance(out)["status_counts"] == dict(sorted(counts.items()))
    describe_shard(frames_path, shard / "crops.npy", tmp_path / "b.parquet", DescriptorConfig(min_track_frames=8), {"rule": "test"})
    assert (tmp_path / "b.parquet").read_bytes() == out.read_bytes()


def test_eye_and_mouth_patches(shard):
    """The reference's boxes: eyes 36–47 with the y margin scaled to the crop (10 px at 128), mouth 48–67;
    the box is centred in a black square; patch_size² output."""
    frames = pq.read_table(shard / "frames.parquet")
    lm = landmarks_numpy(frames["landmarks_crop"])
    keep = np.flatnonzero(frames["crop_index"].to_numpy() >= 0)[:20]
    crops = np.load(shard / "crops.npy", mmap_mode="r")[frames["crop_index"].to_numpy()[keep]]
    eye_box, mouth_box = region_boxes(lm[keep], crops.shape[1])
    for box, pts in ((eye_box, lm[keep, 36:48]), (mouth_box, lm[keep, 48:68])):
        assert (box[:, :2] <= pts.min(1)).all() and (box[:, 2:] >= pts.max(1)).all()
    eye_top = lm[keep, 36:48, 1].min(1)
    assert np.all((eye_top - eye_box[:, 1] >= 10) & (eye_top - eye_box[:, 1] <= 11))
    eye_box256, _ = region_boxes(lm[keep] * 2, 256)
    assert np.all((2 * eye_top - eye_box256[:, 1] >= 20) & (2 * eye_top - eye_box256[:, 1] <= 21))
    eyes, mouths = extract_patches(crops, lm[keep], patch_size=48)
    assert eyes.shape == mouths.shape == (len(keep), 48, 48, 3)
    # eye boxes are wide: black bands above and below, image content in the middle
    assert (eyes[:, 0].max(axis=(1, 2)) == 0).all() and (eyes[:, 24].mean(axis=(1, 2)) > 20).all()


def test_resnet18_runs_offline_on_given_weights(shard, tmp_path):
    import torch
    import torchvision

    torch.manual_seed(0)
    weights = tmp_path / "resnet18-random.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    frames = pq.read_table(shard / "frames.parquet").slice(0, 40)     # the path, not accuracy: 40 frames
    pq.write_table(frames, tmp_path / "frames.parquet")
    out = tmp_path / "resnet.parquet"
    cfg = {"backend": "resnet18_imagenet", "resnet18_weights": str(weights), "batch_size": 16}
    counts = describe_shard(tmp_path / "frames.parquet", shard / "crops.npy", out, DescriptorConfig(**cfg), {"rule": "test"})
    table = pq.read_table(out)
    assert table.num_rows == 40 and counts["ok"] > 30
    assert table.schema.field("eye").type == pa.list_(pa.float32(), 512)
    assert table.schema.field("descriptor").type == pa.list_(pa.float32(), 1024)
    prov = read_provenance(out)
    assert prov["backend"] == "resnet18_imagenet" and prov["weights_sha256"] == sha256_file(weights)
    ok = table.filter(pc.equal(table["status"], "ok"))
    d = np.stack(ok["descriptor"].to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-5)
    assert np.isfinite(d).all() and np.unique(d.round(4), axis=0).shape[0] > 0.9 * len(d)


def test_resnet18_missing_weights_names_setting_and_path(shard, tmp_path):
    missing = tmp_path / "nowhere" / "resnet18-f37072fd.pth"
    with pytest.raises(ModelFileError) as err:
        describe_shard(shard / "frames.parquet", shard / "crops.npy", tmp_path / "x.parquet",
                       DescriptorConfig(backend="resnet18_imagenet", resnet18_weights=str(missing)), {"rule": "test"})
    assert "descriptors.resnet18_weights" in str(err.value) and str(missing) in str(err.value)
    assert not (tmp_path / "x.parquet").exists()


def test_resnet18_weights_of_the_published_name_must_have_its_digest(tmp_path):
    from sslfer.model_files import descriptor_files

    fake = tmp_path / "resnet18-f37072fd.pth"
    fake.write_bytes(b"not torchvision's ImageNet weights")
    (problem,) = [f.problem() for f in descriptor_files("resnet18_imagenet", fake)]
    assert problem.startswith("config key 'descriptors.resnet18_weights': ") and "expected one starting f37072fd" in problem
    own = tmp_path / "my-resnet18.pth"                  # the user's own weights: any digest
    own.write_bytes(b"weights")
    assert [f.problem() for f in descriptor_files("resnet18_imagenet", own)] == [None]
