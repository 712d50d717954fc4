"""Input errors stop the run before any job (one message per problem, naming the key and the file), and
frame trees are read as users have them (.JPG/.jpeg frames, truncated JPEGs recorded as decode errors)."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from sslfer.model_files import ModelFileError
from sslfer.config import ConfigError, prepare_config
from sslfer.preprocess.decode import iter_frames, jpeg_is_complete
from sslfer.preprocess.manifest import build_manifest
from sslfer.preprocess.shard import ShardConfig, process_shard

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "config" / "schema.yaml"
FPS = 25 / 6


@pytest.fixture(scope="module")
def default_config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def _problems(cfg: dict, base: Path) -> list[str]:
    """The messages of the ConfigError that prepare_config raises (empty list: the config is accepted)."""
    try:
        prepare_config(copy.deepcopy(cfg), SCHEMA, base=base)
    except ConfigError as err:
        head, *lines = str(err).split("\n  ")
        assert head == "invalid configuration:"
        return lines
    return []


def _with_corpus(cfg: dict, **corpus) -> dict:
    cfg = copy.deepcopy(cfg)
    cfg["corpora"]["mine"] = corpus
    cfg["corpus"] = "mine"
    return cfg


@pytest.fixture(scope="module")
def frames(tiny_corpus) -> list[np.ndarray]:
    """BGR frames 0, 6, 12, … of one synthetic video (the VoxCeleb1 track rate)."""
    import av

    mp4 = sorted((tiny_corpus / "voxceleb" / "videos").rglob("*.mp4"))[0]
    with av.open(str(mp4)) as c:
        return [f.to_ndarray(format="bgr24") for i, f in enumerate(c.decode(video=0)) if i % 6 == 0]


def _jpeg(bgr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", bgr)
    assert ok
    return buf.tobytes()


# --------------------------------------------------------------------------------------------------
# csv corpora


def test_csv_with_a_wrong_header_is_one_config_error(default_config, tmp_path):
    listing = tmp_path / "videos.csv"
    listing.write_text("file,person\na.mp4,id1\n")
    (msg,) = _problems(_with_corpus(default_config, format="csv", path=str(listing)), tmp_path)
    assert msg.startswith("config key 'corpora.mine.path': ") and str(listing) in msg
    assert "header file,person lacks path, identity" in msg
    listing.write_bytes(b"\xff\xfe\x00\x81 not text")                   # e.g. a video given as the listing
    (msg,) = _problems(_with_corpus(default_config, format="csv", path=str(listing)), tmp_path)
    assert msg.startswith(f"config key 'corpora.mine.path': {listing} cannot be read as a CSV (UnicodeDecodeError")


def test_csv_malformed_rows_are_listed_by_line_with_a_count(default_config, tmp_path):
    listing = tmp_path / "videos.csv"
    rows = ["path,identity", "a.mp4,id1",      # line 2: fine
            "short.mp4",                        # 3: one field
            "",                                 # 4: blank, skipped
            "b.mp4,",                           # 5: empty identity
            ",id2",                             # 6: empty path
            "c.mp4,id3,extra",                  # 7: a field too many
            "d.mp4", "e.mp4", "f.mp4"]          # 8-10: short
    listing.write_text("\n".join(rows) + "\n")
    (msg,) = _problems(_with_corpus(default_config, format="csv", path=str(listing)), tmp_path)
    assert "'corpora.mine.path'" in msg and str(listing) in msg
    assert "7 malformed row(s) (line 3, 5, 6, 7, 8, …)" in msg
    with pytest.raises(ValueError, match="7 malformed row"):      # the manifest refuses it too
        build_manifest("csv", listing, None, shard_size=4)


def test_csv_missing_files_error_only_when_none_exists(default_config, tiny_corpus, tmp_path, caplog):
    listing = tmp_path / "videos.csv"
    listing.write_text("path,identity\n" + "".join(f"gone/{k}.mp4,id{k}\n" for k in range(7)))
    (msg,) = _problems(_with_corpus(default_config, format="csv", path=str(listing)), tmp_path)
    assert "'corpora.mine.path'" in msg and "7 of 7 listed files do not exist" in msg
    assert f"line 2: {tmp_path / 'gone' / '0.mp4'}" in msg and "line 6:" in msg and "line 7:" not in msg
    assert f"relative paths are read from the CSV's folder {tmp_path}" in msg
    # some exist: accepted, logged, and the missing ones become manifest rows with a status
    video = sorted((tiny_corpus / "voxceleb" / "videos").rglob("*.mp4"))[0]
    listing.write_text(f"path,identity\n{video},id1\ngone/1.mp4,id2\n")
    with caplog.at_level(logging.WARNING, logger="sslfer.config"):
        assert _problems(_with_corpus(default_config, format="csv", path=str(listing)), tmp_path) == []
    assert "1 of 2 listed files do not exist" in caplog.text and "missing_file" in caplog.text
    m = build_manifest("csv", listing, None, shard_size=4, workers=2).to_pandas()
    assert list(m.status) == ["ok", "missing_file"]
    assert m.error.iloc[1] == f"{tmp_path / 'gone' / '1.mp4'}: file not found"


def test_tree_corpora_and_meta_files_are_checked(default_config, tmp_path):
    file = tmp_path / "videos.mp4"
    file.write_bytes(b"")
    (tmp_path / "empty").mkdir()
    meta = tmp_path / "meta.csv"
    meta.write_text("name\tid\nsomeone\t17\n")                  # no idNNNNN rows
    cfg = _with_corpus(default_config, format="video_tree", path=str(file))
    cfg["corpora"]["vox"] = {"format": "frame_tree", "path": str(tmp_path / "empty"), "meta": str(meta)}
    cfg["corpora"]["vox2"] = {"format": "frame_tree", "path": str(tmp_path), "meta": str(tmp_path / "nope.csv")}
    msgs = _problems(cfg, tmp_path)
    assert len(msgs) == 3, msgs       # what exists is checked in every corpus; what is missing, in the configured one
    text = "\n".join(msgs)
    assert f"config key 'corpora.mine.path': {file} is a file; format video_tree reads a folder tree" in text
    assert f"config key 'corpora.vox.path': folder {tmp_path / 'empty'} is empty" in text
    assert f"config key 'corpora.vox.meta': {meta} has no 'idNNNNN<tab>name' rows" in text
    cfg["corpus"] = "vox2"
    assert f"config key 'corpora.vox2.meta': path '{tmp_path / 'nope.csv'}' does not exist" in _problems(cfg, tmp_path)


# --------------------------------------------------------------------------------------------------
# evaluation datasets


def test_dataset_layouts_missing_files_are_named(default_config, tmp_path):
    affectnet = tmp_path / "affectnet"
    (affectnet / "Manually_Annotated_file_lists").mkdir(parents=True)
    (affectnet / "Manually_Annotated_file_lists" / "training.csv").write_text("")
    lfw = tmp_path / "lfw"
    (lfw / "lfw_home" / "lfw_funneled").mkdir(parents=True)
    fer = tmp_path / "fer2013.csv"
    fer.write_text("label,image,split\n0,1 2 3,Training\n")
    cfg = copy.deepcopy(default_config)
    cfg["datasets"] = {"affectnet": {"format": "affectnet_csv", "path": str(affectnet)},
                       "fer2013": {"format": "fer2013_csv", "path": str(fer)}, "lfw": {"data_home": str(lfw)}}
    msgs = _problems(cfg, tmp_path)
    assert msgs == [
        f"config key 'datasets.affectnet.path': {affectnet} lacks Manually_Annotated_file_lists/validation.csv, "
        "Manually_Annotated_Images/ (format affectnet_csv)",
        f"config key 'datasets.fer2013.path': {fer} line 1: header label,image,split lacks emotion, pixels, Usage "
        "(expected emotion,pixels,Usage)",
        f"config key 'datasets.lfw.data_home': {lfw} lacks lfw_home/pairs.txt (the layout scikit-learn's LFW "
        "loaders read)",
    ]
    cfg["datasets"]["affectnet"]["format"] = "affectnet_npy"
    cfg["datasets"]["fer2013"] = {"format": "fer2013_folders", "path": str(fer)}
    text = "\n".join(_problems(cfg, tmp_path))
    assert f"'datasets.affectnet.path': {affectnet} lacks train_set/, val_set/ (format affectnet_npy)" in text
    assert f"'datasets.fer2013.path': {fer} lacks train/, test/ (format fer2013_folders)" in text


def test_the_generated_datasets_pass_the_layout_checks(default_config, tiny_corpus, tmp_path):
    # the synthetic sets are written in the real layouts: pointed at from outside synth.root, they pass
    cfg = copy.deepcopy(default_config)
    cfg["datasets"] = {"affectnet": {"format": "affectnet_csv", "path": str(tiny_corpus / "affectnet")},
                       "fer2013": {"format": "fer2013_csv", "path": str(tiny_corpus / "fer2013" / "fer2013.csv")},
                       "lfw": {"data_home": str(tiny_corpus / "lfw")}}
    assert _problems(cfg, tmp_path) == []


# --------------------------------------------------------------------------------------------------
# model files of the chosen backends


def test_missing_model_files_are_all_listed_with_the_backends_own_message(default_config, tmp_path):
    from sslfer.preprocess.detect import FaceDetector

    models = tmp_path / "models"
    models.mkdir()
    cfg = copy.deepcopy(default_config)
    cfg["preprocess"]["detect"] = {"backend": "insightface", "model_dir": str(models)}
    cfg["preprocess"]["landmarks"] = {"backend": "fan", "fan_weights": str(tmp_path / "fan.pth.tar")}
    cfg["descriptors"] = {"backend": "resnet18_imagenet", "resnet18_weights": str(tmp_path / "r18.pth")}
    msgs = _problems(cfg, tmp_path)
    assert len(msgs) == 3, msgs
    det, fan, r18 = msgs
    assert det.startswith(f"config key 'preprocess.detect.model_dir': model file det_10g.onnx not found at "
                          f"{models / 'det_10g.onnx'}")
    assert fan.startswith(f"config key 'preprocess.landmarks.fan_weights': model file fan.pth.tar not found at "
                          f"{tmp_path / 'fan.pth.tar'}")
    assert r18.startswith(f"config key 'descriptors.resnet18_weights': model file r18.pth not found at "
                          f"{tmp_path / 'r18.pth'}")
    with pytest.raises(ModelFileError) as err:               # the backend reports the very same problem
        FaceDetector("insightface", model_dir=str(models))
    assert str(err.value) == det
    cfg["preprocess"]["landmarks"] = {"backend": "insightface", "model_dir": str(models)}
    (models / "det_10g.onnx").write_bytes(b"x")
    (tmp_path / "r18.pth").write_bytes(b"x")
    (msg,) = _problems(cfg, tmp_path)                         # only what is still missing
    assert msg.startswith(f"config key 'preprocess.landmarks.model_dir': model file 1k3d68.onnx not found at "
                          f"{models / '1k3d68.onnx'}")
    (models / "1k3d68.onnx").write_bytes(b"x")
    assert _problems(cfg, tmp_path) == []


def test_content_checks_can_be_skipped_but_not_the_paths(default_config, tmp_path):
    cfg = copy.deepcopy(default_config)
    cfg["preprocess"]["detect"] = {"backend": "insightface", "model_dir": str(tmp_path)}
    cfg["datasets"]["fer2013"]["path"] = str(tmp_path / "nope.csv")
    with pytest.raises(ConfigError) as err:
        prepare_config(copy.deepcopy(cfg), SCHEMA, base=tmp_path, check_inputs=False)
    assert "datasets.fer2013.path" in str(err.value) and "det_10g.onnx" not in str(err.value)
    assert "det_10g.onnx" in "\n".join(_problems(cfg, tmp_path))


def test_snakemake_stops_before_any_job_listing_every_input_problem(snakemake_all, tmp_path):
    listing = tmp_path / "videos.csv"
    listing.write_text("video,who\n")
    returncode, out, work = snakemake_all({"corpus": "mine", "corpora": {"mine": {"format": "csv", "path": str(listing)}},
                                           "preprocess": {"landmarks": {"backend": "insightface",
                                                                        "model_dir": str(tmp_path)}}})
    assert returncode != 0
    assert f"config key 'corpora.mine.path': {listing} line 1: header video,who lacks path, identity" in out, out
    assert "config key 'preprocess.landmarks.model_dir': model file 1k3d68.onnx not found" in out, out
    assert not (work / "logs").exists() and not (work / "resources").exists()


# --------------------------------------------------------------------------------------------------
# frame trees as users have them


def test_frame_tree_reads_upper_case_and_jpeg_suffixes_in_numeric_order(frames, tmp_path):
    data = tmp_path / "data"
    mixed = data / "Person_A" / "1.6" / "yt0" / "00001"
    upper = data / "Person_B" / "1.6" / "yt1" / "00001"
    mixed.mkdir(parents=True)
    upper.mkdir(parents=True)
    suffixes = [".jpg", ".JPG", ".jpeg", ".JPEG"]
    written = []
    for k in range(12):                                       # 1.jpg 2.JPG 3.jpeg 4.JPEG 5.jpg … 12.JPEG
        name = f"{k + 1}{suffixes[k % 4]}"
        (mixed / name).write_bytes(_jpeg(frames[k]))
        (upper / f"{k + 1}.JPG").write_bytes(_jpeg(frames[k]))
        written.append(mixed / name)
    (mixed / "notes.txt").write_text("not a frame")
    m = build_manifest("frame_tree", data, None, shard_size=4, workers=2).to_pandas()
    assert list(m.video_id) == ["Person_A/1.6/yt0/00001", "Person_B/1.6/yt1/00001"]
    assert list(m.identity) == ["Person_A", "Person_B"]
    assert list(m.n_frames) == [12, 12] and (m.status == "ok").all() and (m.width == frames[0].shape[1]).all()
    got = list(iter_frames(mixed, "frames", 12, FPS, FPS))
    assert [g[0] for g in got] == list(range(12)) and all(g[2] is None for g in got)
    for (_, rgb, _), path in zip(got, written):                # frame k is file k+1 (10 after 9, not after 1)
        assert np.array_equal(rgb, cv2.imread(str(path))[..., ::-1])


def test_truncated_jpeg_frame_is_a_decode_error_naming_the_file(frames, tmp_path):
    data = tmp_path / "data"
    track = data / "Person_A" / "1.6" / "yt0" / "00001"
    track.mkdir(parents=True)
    for k in range(8):
        (track / f"{k + 1}.jpg").write_bytes(_jpeg(frames[k]))
    full = (track / "5.jpg").read_bytes()
    half = full[: len(full) // 2]
    (track / "5.jpg").write_bytes(half)
    # cv2.imread (what frame folders were read with) hands on a partly grey frame, a libjpeg warning only
    assert cv2.imread(str(track / "5.jpg"), cv2.IMREAD_COLOR) is not None
    m = build_manifest("frame_tree", data, None, shard_size=4)
    counts = process_shard(m, ShardConfig(), tmp_path / "frames.parquet", tmp_path / "crops.npy", {"rule": "test"})
    df = pq.read_table(tmp_path / "frames.parquet").to_pandas()
    bad = df[df.frame_idx == 4]
    assert list(bad.status) == ["decode_error"]
    assert bad.error.iloc[0] == f"{track / '5.jpg'}: truncated JPEG (no end-of-image marker; {len(half)} bytes)"
    assert counts["decode_error"] == 1 and counts["ok"] + counts["multi_face"] == 7


def test_jpeg_completeness_check(frames):
    full = _jpeg(frames[0])
    assert jpeg_is_complete(full) and not jpeg_is_complete(full[: len(full) // 2])
    assert not jpeg_is_complete(full[:-2]) and not jpeg_is_complete(full[:300])
    assert jpeg_is_complete(full + b"\x00" * 5000)            # padding after the end marker is allowed
    assert jpeg_is_complete(b"not a jpeg")                     # not a JPEG: left to the decoder ("unreadable")
    # an EXIF-style thumbnail carries its own end marker; it must not pass a truncated main image
    thumb = _jpeg(cv2.resize(frames[0], (32, 32)))
    payload = b"Exif\x00\x00" + thumb
    with_thumb = full[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + full[2:]
    cut = with_thumb[: len(with_thumb) * 3 // 4]
    assert jpeg_is_complete(with_thumb) and b"\xff\xd9" in cut and not jpeg_is_complete(cut)


def test_stray_bytes_between_jpeg_segments_are_skipped_as_the_decoder_does(frames):
    full = _jpeg(frames[0])
    app0_end = 4 + int.from_bytes(full[4:6], "big")              # after SOI and the APP0 segment
    stray = full[:app0_end] + b"\x00\x00" + full[app0_end:]       # libjpeg warns and decodes this image
    assert cv2.imdecode(np.frombuffer(stray, np.uint8), cv2.IMREAD_COLOR) is not None
    assert jpeg_is_complete(stray) and not jpeg_is_complete(stray[: len(stray) // 2])


def test_a_link_back_up_a_frame_tree_is_not_a_second_copy(frames, tmp_path):
    from sslfer.preprocess.manifest import frame_folders

    track = tmp_path / "data" / "Some_Name" / "1.6" / "abcdefghijk" / "1"
    track.mkdir(parents=True)
    (track / "1.jpg").write_bytes(_jpeg(frames[0]))
    (track / "loop").symlink_to(tmp_path / "data")             # a cycle
    assert frame_folders(tmp_path / "data") == {track}
