"""Precomputed face swaps on the preprocessed tiny corpus: pixels, landmark shape, donors, bad input, determinism."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from sslfer.parquet import landmarks_array, landmarks_numpy, read_provenance
from sslfer.preprocess.align import similarity
from sslfer.swap.faceswap import (DEGENERATE, OK, colour_kernel, colour_ratio, fit_transform, overlay_mask,
                                  swap_face)
from sslfer.swap.qc import write_swaps_sheet
from sslfer.swap.shard import SwapConfig, swap_shard

FEATHER = 3.0


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _write_shard(table, root: Path, shard: int, crops: Path) -> Path:
    """A ``frames/shard=NNNNN`` directory holding ``table`` and a link to the crops it indexes."""
    d = root / "frames" / f"shard={shard:05d}"
    d.mkdir(parents=True)
    pq.write_table(table, d / "frames.parquet")
    (d / "crops.npy").symlink_to(crops)
    return d / "frames.parquet"


def _run(frames_parquets: list[Path], shard: int, out: Path, **cfg) -> tuple:
    counts = swap_shard(frames_parquets, shard, out / "swaps.parquet", out / "swaps.npy",
                        SwapConfig(**{"feather_px": FEATHER, **cfg}), seed=0, provenance={"rule": "test"})
    return counts, pq.read_table(out / "swaps.parquet"), np.load(out / "swaps.npy", mmap_mode="r")


@pytest.fixture(scope="module")
def corpus(processed, video_manifest, tmp_path_factory):
    """The processed tiny corpus as one shard (``whole``) and split into the manifest's shards (``split``)."""
    src = processed[0]
    table = pq.read_table(src / "frames.parquet")
    root = tmp_path_factory.mktemp("swap_corpus")
    whole = [_write_shard(table, root / "whole", 0, src / "crops.npy")]
    split = []
    for s in sorted(set(video_manifest.column("shard").to_pylist())):
        vids = video_manifest.filter(pc.equal(video_manifest.column("shard"), s)).column("video_id")
        split.append(_write_shard(table.filter(pc.is_in(table.column("video_id"), vids)), root / "split", s,
                                  src / "crops.npy"))
    return {"whole": whole, "split": split, "root": root, "table": table, "crops": processed[3]}


@pytest.fixture(scope="module")
def swapped(corpus):
    """(counts, swaps table, swap images) of the whole corpus as one shard, default settings."""
    return _run(corpus["whole"], 0, corpus["root"] / "swaps")


def _pairs(corpus, swaps, rows):
    """(donor crop, donor landmarks, expression crop, expression landmarks) of the given swap rows."""
    lm = landmarks_numpy(corpus["table"].column("landmarks_crop"))
    by_crop = {c: i for i, c in enumerate(corpus["table"].column("crop_index").to_pylist()) if c >= 0}
    t = swaps.to_pandas()
    for r in rows:
        d, e = int(t.donor_crop_index[r]), int(t.crop_index[r])
        yield corpus["crops"][d], lm[by_crop[d]], corpus["crops"][e], lm[by_crop[e]]


def test_swaps_cover_every_cropped_frame(swapped, corpus):
    counts, swaps, images = swapped
    n_crops = int(pc.sum(pc.greater_equal(corpus["table"].column("crop_index"), 0)).as_py())
    assert swaps.num_rows == 2 * n_crops and counts == {"ok": swaps.num_rows}
    assert images.shape == (swaps.num_rows, 128, 128, 3) and images.dtype == np.uint8
    assert swaps.column("swap_index").to_pylist() == list(range(swaps.num_rows))
    assert read_provenance(corpus["root"] / "swaps" / "swaps.parquet")["status_counts"] == {"ok": swaps.num_rows}
    area = swaps.column("mask_area").to_numpy()
    print(f"mask area {area.mean():.3f} (min {area.min():.3f}, max {area.max():.3f}) of the crop")
    assert 0.1 < area.min() and area.max() < 0.4


def test_swap_keeps_the_donor_outside_the_mask_and_takes_its_colour(swapped, corpus):
    _, swaps, images = swapped
    res_lm = landmarks_numpy(swaps.column("landmarks_crop"))
    to_donor, to_expr, apart = [], [], []
    for j, (donor, donor_lm, expr, expr_lm) in enumerate(_pairs(corpus, swaps, range(swaps.num_rows))):
        img = images[j]
        m, _ = fit_transform(donor_lm, expr_lm, 128)
        warped_lm = expr_lm @ m[:, :2].T + m[:, 2]
        mask = overlay_mask(donor_lm, warped_lm, 128, FEATHER)
        outside = mask == 0
        assert np.array_equal(img[outside], donor[outside]), j          # donor pixels kept exactly
        assert (img[mask > 0.99] != donor[mask > 0.99]).any()
        assert np.allclose(res_lm[j, :17], donor_lm[:17]) and np.allclose(res_lm[j, 17:], warped_lm[17:], atol=1e-3)
        # skin colour inside the mask (nose bridge, above the upper lip) follows the donor, not the expression frame
        for c in ((res_lm[j, 27] + res_lm[j, 28]) / 2, (res_lm[j, 33] + res_lm[j, 51]) / 2):
            x, y = np.round(c).astype(int)
            patch = [a[y - 3:y + 4, x - 3:x + 4].reshape(-1, 3).mean(0) for a in (img, donor, expr)]
            to_donor.append(np.linalg.norm(patch[0] - patch[1]))
            to_expr.append(np.linalg.norm(patch[0] - patch[2]))
            apart.append(np.linalg.norm(patch[1] - patch[2]))
    to_donor, to_expr, apart = np.array(to_donor), np.array(to_expr), np.array(apart)
    differ = apart > 40      # spots where the two faces' skin differs visibly: only there can the test tell
    print(f"inner-face skin colour distance (RGB): to donor {to_donor.mean():.1f}, to expression frame "
          f"{to_expr.mean():.1f}; closer to donor in {np.mean(to_donor < to_expr):.0%} "
          f"({np.mean(to_donor[differ] < to_expr[differ]):.0%} of the {differ.sum()} spots where the faces differ)")
    assert to_donor.mean() < 0.3 * to_expr.mean()
    assert differ.sum() >= 50 and np.mean(to_donor[differ] < to_expr[differ]) > 0.9


def test_swap_face_matches_the_shard_output(swapped, corpus):
    _, swaps, images = swapped
    for j, pair in zip((0, 7, 33), _pairs(corpus, swaps, (0, 7, 33))):
        r = swap_face(*pair, feather_px=FEATHER)
        assert r.status == OK and np.array_equal(r.image, images[j])


def test_swap_carries_the_expression_landmark_shape(swapped, corpus):
    import dlib

    from sslfer.model_files import dlib_model_path

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(dlib_model_path("shape_predictor_68")))
    _, swaps, images = swapped

    def shape_error(points, target):
        m = similarity(points[17:], target[17:])
        iod = np.linalg.norm(target[42:48].mean(0) - target[36:42].mean(0))
        return np.linalg.norm(points[17:] @ m[:, :2].T + m[:, 2] - target[17:], axis=1).mean() / iod

    rows = range(0, swaps.num_rows, 2)
    to_expr, to_donor, missed = [], [], 0
    for j, (_, donor_lm, _, expr_lm) in zip(rows, _pairs(corpus, swaps, rows)):
        img = np.ascontiguousarray(images[j])
        dets = detector(img, 1)
        if len(dets) != 1:
            missed += 1
            continue
        pts = np.array([[p.x, p.y] for p in predictor(img, dets[0]).parts()], np.float64)
        to_expr.append(shape_error(pts, expr_lm))
        to_donor.append(shape_error(pts, donor_lm))
    to_expr, to_donor = np.array(to_expr), np.array(to_donor)
    print(f"dlib on {len(rows)} swaps ({missed} without one face): inner-face shape error (IOD) to the expression "
          f"frame {to_expr.mean():.4f}, to the donor {to_donor.mean():.4f}; closer to expression in "
          f"{np.mean(to_expr < to_donor):.0%}")
    assert missed <= 0.1 * len(rows)
    assert to_expr.mean() < 0.75 * to_donor.mean() and np.mean(to_expr < to_donor) >= 0.75


def test_donors_are_other_identities_of_similar_pose(swapped, corpus, tiny_corpus):
    swaps = swapped[1].to_pandas()
    assert (swaps.donor_identity != swaps.identity).all()
    distinct = swaps.drop_duplicates(["video_id", "frame_idx", "donor_video_id", "donor_frame_idx"])
    assert distinct.groupby(["video_id", "frame_idx"]).size().eq(2).all()
    gt = pq.read_table(tiny_corpus / "groundtruth" / "videos.parquet",
                       columns=["video_id", "frame_idx", "yaw"]).to_pandas().set_index(["video_id", "frame_idx"]).yaw
    frames = corpus["table"].select(["video_id", "identity", "frame_idx", "status"]).to_pandas()
    pool = frames[frames.status == "ok"]
    pool_yaw, pool_id = gt.loc[list(zip(pool.video_id, pool.frame_idx))].to_numpy(), pool.identity.to_numpy()
    yaw = gt.loc[list(zip(swaps.video_id, swaps.frame_idx))].to_numpy()
    donor = np.abs(yaw - gt.loc[list(zip(swaps.donor_video_id, swaps.donor_frame_idx))].to_numpy()).mean()
    random = np.mean([np.abs(pool_yaw[pool_id != i] - y).mean() for i, y in zip(swaps.identity, yaw)])
    print(f"|yaw difference| to donors {donor:.2f}°, to a random other-identity frame {random:.2f}°")
    assert donor < 0.85 * random


def test_donors_do_not_depend_on_sharding(swapped, corpus, tmp_path):
    key = ["video_id", "frame_idx", "donor_rank"]
    cols = key + ["donor_video_id", "donor_frame_idx", "status"]
    whole = swapped[1].to_pandas()
    parts, images = [], {}
    for s, order in ((0, corpus["split"]), (1, corpus["split"][::-1])):
        _, t, img = _run(order, s, tmp_path / str(s))
        parts.append(t.to_pandas())
        keys = zip(*(t.column(k).to_pylist() for k in key))
        images.update({k: img[i] for k, i in zip(keys, t.column("swap_index").to_pylist())})
    split = pd.concat(parts).sort_values(key).reset_index(drop=True)
    assert split[cols].equals(whole.sort_values(key).reset_index(drop=True)[cols])
    j = whole.index[whole.donor_rank == 1][3]
    assert np.array_equal(images[tuple(whole.loc[j, key])], swapped[2][whole.swap_index[j]])


def test_rerun_is_byte_identical(swapped, corpus, tmp_path):
    _run(corpus["whole"], 0, tmp_path)
    for name in ("swaps.parquet", "swaps.npy"):
        assert _sha(tmp_path / name) == _sha(corpus["root"] / "swaps" / name)


def test_degenerate_landmarks_are_flagged_not_raised(swapped, corpus):
    donor, donor_lm, expr, expr_lm = next(_pairs(corpus, swapped[1], [0]))
    centre = expr_lm.mean(0)
    angle = np.radians(90)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    nan = expr_lm.copy()
    nan[40] = np.nan
    cases = {"non-finite": (donor_lm, nan), "collapsed": (np.tile(donor_lm[30], (68, 1)), expr_lm),
             "scale": (donor_lm, (expr_lm - centre) * 3 + centre),
             "rotation": (donor_lm, (expr_lm - centre) @ rot.T + centre)}
    for name, (dl, el) in cases.items():
        r = swap_face(donor, dl, expr, el)
        assert r.status == DEGENERATE and r.image is None and r.error, name
        print(f"{name}: {r.error}")


def test_bad_frames_in_a_shard(corpus, tmp_path):
    # one frame loses its crop (no_face), one keeps its crop with collapsed landmarks, on a copy of the corpus
    t = corpus["table"]
    lm = landmarks_numpy(t.column("landmarks_crop"))
    crop_index = t.column("crop_index").to_numpy().copy()
    collapsed, lost = np.flatnonzero(crop_index >= 0)[[5, 9]]
    lm[collapsed] = lm[collapsed, 30]
    crop_index[lost] = -1
    status = t.column("status").to_pylist()
    status[lost] = "no_face"
    bad = t.set_column(t.schema.get_field_index("landmarks_crop"), "landmarks_crop", landmarks_array(lm))
    bad = bad.set_column(bad.schema.get_field_index("crop_index"), "crop_index", pa.array(crop_index))
    bad = bad.set_column(bad.schema.get_field_index("status"), "status", pa.array(status))
    frames = _write_shard(bad, tmp_path, 0, corpus["root"] / "whole" / "frames" / "shard=00000" / "crops.npy")
    counts, swaps, images = _run([frames], 0, tmp_path / "out")
    df = swaps.to_pandas()

    def frame(i):
        return (df.video_id == t.column("video_id")[i].as_py()) & (df.frame_idx == t.column("frame_idx")[i].as_py())

    n_crops = int((t.column("crop_index").to_numpy() >= 0).sum())
    assert not frame(lost).any() and swaps.num_rows == 2 * (n_crops - 1)
    assert (df[frame(collapsed)].status == DEGENERATE).all() and counts[DEGENERATE] == 2
    assert df[frame(collapsed)].error.str.contains("collapsed").all() and (df[frame(collapsed)].swap_index == -1).all()
    assert images.shape[0] == counts["ok"] == (df.swap_index >= 0).sum()
    assert read_provenance(tmp_path / "out" / "swaps.parquet")["frames_without_crop"] == 1
    # neither frame is anyone's donor: one has no pose, the other no crop
    bad_keys = {(t.column("video_id")[i].as_py(), t.column("frame_idx")[i].as_py()) for i in (collapsed, lost)}
    assert not bad_keys & set(zip(df.donor_video_id, df.donor_frame_idx))


def test_single_identity_gets_no_donor_and_the_track_cap(corpus, tmp_path):
    t = corpus["table"]
    one = t.filter(pc.equal(t.column("identity"), t.column("identity")[0]))
    frames = _write_shard(one, tmp_path, 0, corpus["root"] / "whole" / "frames" / "shard=00000" / "crops.npy")
    counts, swaps, images = _run([frames], 0, tmp_path / "out", max_frames_per_track=3)
    df = swaps.to_pandas()
    assert counts == {"no_donor": swaps.num_rows} and images.shape == (0, 128, 128, 3)
    assert df.groupby("video_id").frame_idx.nunique().eq(3).all() and df.donor_video_id.isna().all()
    for vid, g in df.groupby("video_id"):               # evenly spaced: the track's first and last frames included
        track = one.filter(pc.equal(one.column("video_id"), vid)).column("frame_idx").to_pylist()
        assert g.frame_idx.min() == track[0] and g.frame_idx.max() == track[-1] and len(track) > 3


def test_no_uint8_wrap_bright_on_dark(swapped, corpus):
    # a bright donor and a dark expression frame with a bright spot: the colour-corrected spot overflows 255
    _, donor_lm, _, expr_lm = next(_pairs(corpus, swapped[1], [0]))
    donor = np.full((128, 128, 3), 250, np.uint8)
    expr = np.full((128, 128, 3), 30, np.uint8)
    x, y = np.round(expr_lm[30]).astype(int)
    cv2.circle(expr, (int(x), int(y)), 5, (220, 220, 220), -1)
    r = swap_face(donor, donor_lm, expr, expr_lm)
    assert r.status == OK
    m, _ = fit_transform(donor_lm, expr_lm, 128)
    warped = cv2.warpAffine(expr, m, (128, 128), flags=cv2.INTER_LINEAR).astype(np.float32)
    mask = overlay_mask(donor_lm, expr_lm @ m[:, :2].T + m[:, 2], 128, FEATHER)
    ratio = colour_ratio(donor.astype(np.float32), warped, mask, colour_kernel(donor_lm))
    tx, ty = np.round(r.landmarks[30]).astype(int)
    spot = np.s_[ty - 2:ty + 3, tx - 2:tx + 3]
    blended = warped[spot] * ratio[spot]
    print(f"bright-on-dark: colour-corrected spot {blended.min():.0f}–{blended.max():.0f} before the clip, "
          f"{r.image[spot].min()}–{r.image[spot].max()} after it")
    assert blended.min() > 300 and (r.image[spot] == 255).all()          # saturated, not wrapped to dark


def test_failed_write_leaves_no_temporary_file(corpus, tmp_path):
    s0, s1 = corpus["split"]
    broken = tmp_path / "frames" / "shard=00001"
    broken.mkdir(parents=True)
    (broken / "frames.parquet").symlink_to(s1)
    (broken / "crops.npy").symlink_to(tmp_path / "missing.npy")          # the donors' crops are gone
    with pytest.raises(FileNotFoundError):
        _run([s0, broken / "frames.parquet"], 0, tmp_path / "out")
    assert not any((tmp_path / "out").iterdir())


def test_qc_sheet(swapped, corpus, tmp_path):
    png = write_swaps_sheet(tmp_path / "swaps.png", [corpus["root"] / "swaps" / "swaps.parquet"], corpus["whole"], n=12)
    img = cv2.imread(str(png))
    assert img.shape == (6 * 128, 6 * 128 + 6, 3) and img.std() > 20


def test_jpeg_storage_holds_the_same_swaps_in_a_fraction_of_the_bytes(swapped, corpus, tmp_path):
    from sslfer.jpeg_store import JpegImages, open_images
    from sslfer.npy import take_sorted

    counts, table, _ = _run(corpus["whole"], 0, tmp_path / "jpeg", storage="jpeg", jpeg_quality=90)
    assert counts == swapped[0] and table.equals(swapped[1])          # same plan, same rows, same indices
    raw, jpeg = swapped[2], open_images(tmp_path / "jpeg" / "swaps.npy")
    assert isinstance(jpeg, JpegImages) and jpeg.shape == raw.shape
    size_raw = (corpus["root"] / "swaps" / "swaps.npy").stat().st_size
    assert (tmp_path / "jpeg" / "swaps.npy").stat().st_size < size_raw / 5
    rows = np.array([len(raw) - 1, 0, 3, 3])
    back = take_sorted(jpeg, rows)                                   # the trainer's gather reads it like the array
    assert back.shape == (4,) + raw.shape[1:] and np.array_equal(back[2], jpeg[3])
    err = back.astype(np.float64) - raw[rows].astype(np.float64)
    assert 10 * np.log10(255 ** 2 / np.mean(err ** 2)) > 30          # PSNR in dB
    with pytest.raises(IndexError, match="out of range"):
        jpeg[len(raw)]
    _run(corpus["whole"], 0, tmp_path / "again", storage="jpeg", jpeg_quality=90)
    assert _sha(tmp_path / "again" / "swaps.npy") == _sha(tmp_path / "jpeg" / "swaps.npy")
    png = write_swaps_sheet(tmp_path / "swaps.png", [tmp_path / "jpeg" / "swaps.parquet"], corpus["whole"], n=6)
    assert cv2.imread(str(png)).std() > 20


def test_a_truncated_jpeg_array_is_an_error_naming_the_file(tmp_path):
    from sslfer.jpeg_store import encode_jpeg, open_images, write_jpeg_array

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
    write_jpeg_array(tmp_path / "a.npy", [encode_jpeg(im, 95) for im in images], 32, 32)
    assert open_images(tmp_path / "a.npy")[np.array([2, 0])].shape == (2, 32, 32, 3)
    blob = np.load(tmp_path / "a.npy")
    np.save(tmp_path / "cut.npy", blob[:-100])
    with pytest.raises(ValueError, match="cut.npy.*truncated"):
        open_images(tmp_path / "cut.npy")
    with pytest.raises(ValueError, match="storage"):
        SwapConfig(storage="png")


def test_training_batches_read_jpeg_swaps_like_raw_ones(pretrain_corpus, tmp_path):
    from sslfer.train.data import TrainingData

    frames = [pretrain_corpus / "frames" / "shard=00000" / "frames.parquet"]
    data = {}
    for storage in ("raw", "jpeg"):
        out = tmp_path / storage / "shard=00000"
        swap_shard(frames, 0, out / "swaps.parquet", out / "swaps.npy", SwapConfig(storage=storage), seed=0,
                   provenance={"rule": "test"})
        data[storage] = TrainingData(pretrain_corpus / "pairs.parquet", pretrain_corpus / "frames", tmp_path / storage)
    draw = data["raw"].index.draw(0, 0, time_aug=True, hard_neg=True)
    rows = np.arange(len(draw.track))
    raw, jpeg = (data[s].batch(draw, rows, np.random.default_rng(5), swap_p=1.0) for s in ("raw", "jpeg"))
    assert raw.swapped.sum() > 0 and np.array_equal(raw.swapped, jpeg.swapped)
    assert np.array_equal(raw.images[~raw.swapped], jpeg.images[~jpeg.swapped])   # the crops: raw in both
    err = raw.images[raw.swapped].astype(np.float64) - jpeg.images[jpeg.swapped].astype(np.float64)
    assert 10 * np.log10(255 ** 2 / np.mean(err ** 2)) > 30


def test_jpeg_slots_fill_in_any_order_empty_slots_read_black_and_a_failed_block_leaves_nothing(tmp_path):
    from sslfer.jpeg_store import image_slots, open_images

    rng = np.random.default_rng(1)                                     # smooth images, as faces are
    images = np.stack([cv2.resize(rng.integers(0, 255, (3, 3, 3), dtype=np.uint8), (24, 24)) for _ in range(4)])
    with image_slots(tmp_path / "a.npy", 4, 24, "jpeg", 95) as slots:
        for k in (3, 0, 1, 2):
            slots[k] = images[k]
        slots[1:3] = 0                                                # a failed video's slots, emptied again
    back = open_images(tmp_path / "a.npy")
    assert back.shape == (4, 24, 24, 3) and not back[1].any() and not back[2].any()
    assert np.abs(back[np.array([0, 3])].astype(int) - images[[0, 3]]).mean() < 3
    with pytest.raises(ValueError, match="emptied"):
        with image_slots(tmp_path / "b.npy", 2, 24, "jpeg") as slots:
            slots[0:2] = images[:2]
    with pytest.raises(RuntimeError):
        with image_slots(tmp_path / "c.npy", 2, 24, "jpeg") as slots:
            slots[0] = images[0]
            raise RuntimeError("crash")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy"]
    with pytest.raises(ValueError, match="storage"):
        with image_slots(tmp_path / "d.npy", 2, 24, "webp"):
            pass


def test_training_batches_read_jpeg_crops_like_raw_ones(pretrain_corpus, tmp_path):
    import shutil

    from sslfer.jpeg_store import image_slots, open_images
    from sslfer.train.data import TrainingData

    src = pretrain_corpus / "frames" / "shard=00000"
    dst = tmp_path / "frames" / "shard=00000"
    dst.mkdir(parents=True)
    shutil.copy(src / "frames.parquet", dst / "frames.parquet")
    raw_crops = open_images(src / "crops.npy")
    with image_slots(dst / "crops.npy", len(raw_crops), raw_crops.shape[1], "jpeg", 90) as slots:
        for k in range(len(raw_crops)):
            slots[k] = raw_crops[k]
    raw, jpeg = (TrainingData(pretrain_corpus / "pairs.parquet", d) for d in (pretrain_corpus / "frames", tmp_path / "frames"))
    frames = np.random.default_rng(0).choice(raw.index.n_frames, 64)
    a, b = raw.frame_images(frames), jpeg.frame_images(frames)
    assert a.shape == b.shape == (64,) + raw_crops.shape[1:]
    err = a.astype(np.float64) - b.astype(np.float64)
    assert 10 * np.log10(255 ** 2 / np.mean(err ** 2)) > 30
    draw = raw.index.draw(0, 0, time_aug=True, hard_neg=True)
    rows = np.arange(len(draw.track))
    ba, bb = (d.batch(draw, rows, np.random.default_rng(5), swap_p=0.0) for d in (raw, jpeg))
    assert ba.images.shape == bb.images.shape and np.array_equal(ba.landmarks, bb.landmarks)
