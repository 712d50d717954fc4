"""The ``device`` setting (sslfer.device) and the stages that take it, on the CPU; a GPU test where one is."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from sslfer.config import ConfigError, load_schema, prepare_config, schema_errors
from sslfer.device import (CPU_PROVIDER, CUDA_PROVIDER, DeviceError, describe, onnx_ctx_id, onnx_providers,
                           require_gpus, resolve_device)
from sslfer.evaluate.features import embed_crops, features_numpy, preprocess, write_corpus_features, write_item_features
from sslfer.parquet import read_provenance
from sslfer.train.model import load_encoder, random_encoder

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "config" / "schema.yaml"
NO_GPU = not torch.cuda.is_available()
needs_no_gpu = pytest.mark.skipif(not NO_GPU, reason="checks the no-GPU errors; this machine has a GPU")


def test_auto_is_the_gpu_when_there_is_one_else_the_cpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert resolve_device().type == expected


@pytest.mark.parametrize("setting", ["cpu", " CPU ", torch.device("cpu")])
def test_cpu(setting):
    assert resolve_device(setting) == torch.device("cpu")


@needs_no_gpu
@pytest.mark.parametrize("setting", ["cuda", "cuda:0", "cuda:3", torch.device("cuda", 1)])
def test_a_gpu_asked_for_and_absent_is_an_error_naming_the_key(setting):
    with pytest.raises(DeviceError, match=r"config key 'device': .* asks for a GPU, but .*set device: cpu"):
        resolve_device(setting)


@pytest.mark.skipif(NO_GPU, reason="needs a GPU to be out of range of")
def test_a_gpu_index_out_of_range_is_an_error_naming_the_key():
    with pytest.raises(DeviceError, match=r"config key 'device': 'cuda:99' is out of range: \d+ GPU"):
        resolve_device("cuda:99")


@pytest.mark.parametrize("setting", ["gpu", "cuda:", "cuda:-1", "cuda:x", "", "mps", "cuda0", "cpu:0", 3])
def test_bad_settings_are_rejected_by_resolve_and_by_the_schema(setting):
    with pytest.raises(DeviceError, match=r"config key 'device': .* is not a device \(one of auto, cpu, cuda, cuda:N"):
        resolve_device(setting)
    assert any(m.startswith("config key 'device'") for m in schema_errors({"device": setting}, load_schema(SCHEMA)))
    with pytest.raises(ConfigError, match="config key 'device'"):
        prepare_config({"device": setting}, SCHEMA, base=REPO)


def test_schema_default_is_auto_and_accepts_the_settings():
    assert prepare_config({}, SCHEMA, base=REPO)["device"] == "auto"
    for good in ("auto", "cpu", "cuda", "cuda:1"):       # the GPU is checked in the job, where it matters
        assert prepare_config({"device": good}, SCHEMA, base=REPO)["device"] == good


def test_describe_cpu():
    line = describe("cpu")
    assert line == f"device: cpu ({torch.get_num_threads()} threads, torch {torch.__version__})"


def test_onnx_providers_cpu():
    assert onnx_providers("cpu") == [CPU_PROVIDER]
    assert onnx_ctx_id(onnx_providers("cpu")) == -1
    assert onnx_ctx_id([(CUDA_PROVIDER, {"device_id": 2}), CPU_PROVIDER]) == 2
    if NO_GPU:
        assert onnx_providers("auto") == [CPU_PROVIDER]


@needs_no_gpu
def test_pretrain_gpus_without_a_gpu_is_an_error_naming_the_key():
    require_gpus(0)
    with pytest.raises(DeviceError, match=r"config key 'pretrain.gpus': 1 GPU\(s\) asked for, but"):
        require_gpus(1)


@needs_no_gpu
def test_gpu_backends_refuse_a_missing_gpu(tmp_path):
    """fan, insightface (detector and landmarks) and resnet18_imagenet say so instead of running on the CPU."""
    from sslfer.descriptors.backends import ResNet18ImageNet
    from sslfer.preprocess.detect import FaceDetector
    from sslfer.preprocess.landmarks import Landmarker

    for name in ("det_10g.onnx", "1k3d68.onnx", "fan.pth.tar", "resnet18.pth"):
        (tmp_path / name).write_bytes(b"")            # present (the file checks pass); never loaded
    with pytest.raises(DeviceError, match="config key 'device'"):
        FaceDetector("insightface", model_dir=str(tmp_path), device="cuda")
    with pytest.raises(DeviceError, match="config key 'device'"):
        Landmarker("insightface", model_dir=tmp_path, device="cuda")
    with pytest.raises(DeviceError, match="config key 'device'"):
        Landmarker("fan", fan_weights=tmp_path / "fan.pth.tar", device="cuda:0")
    with pytest.raises(DeviceError, match="config key 'device'"):
        ResNet18ImageNet(tmp_path / "resnet18.pth", device="cuda")
    FaceDetector("opencv_haar", device="cuda")           # CPU backends ignore the setting


# --- features: the CPU path gives the numbers of a plain forward pass -------------------------------------

def _reference(encoder, crops: np.ndarray, rows: np.ndarray, resize: int, crop: int, batch_size: int) -> np.ndarray:
    """What feature extraction computed before the device argument: ``net(preprocess(crops[rows]))`` per batch."""
    net, _ = load_encoder(str(encoder))
    with torch.no_grad():
        return np.concatenate([net(preprocess(torch.from_numpy(np.ascontiguousarray(crops[rows[s:s + batch_size]])),
                                              resize, crop)).numpy() for s in range(0, len(rows), batch_size)])


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return random_encoder(tmp_path_factory.mktemp("enc") / "encoder.pt", "resnet18", seed=0, config={})


def test_item_features_on_cpu_are_todays_numbers(processed, encoder, tmp_path):
    _, _, frames, crops = processed
    n = len(crops)
    rng = np.random.default_rng(1)
    crop_index = rng.permutation(n)[:min(n, 40)]          # unsorted reads, several batches
    crop_index[::7] = -1                                   # items without a crop: null features
    items = tmp_path / "items.parquet"
    pd.DataFrame({"item_id": [f"i{k}" for k in range(len(crop_index))], "crop_index": crop_index}).to_parquet(items)
    npy = tmp_path / "crops.npy"
    np.save(npy, np.asarray(crops))
    ref = _reference(encoder, crops, crop_index[crop_index >= 0], 72, 64, 16)
    outs = {}
    for name, kwargs in {"default": {}, "cpu": {"device": "cpu"}, "torch": {"device": torch.device("cpu")}}.items():
        outs[name] = tmp_path / f"{name}.parquet"
        write_item_features(str(encoder), str(items), str(npy), str(outs[name]), 72, 64, {"rule": "test"},
                            batch_size=16, **kwargs)
        feats = features_numpy(pq.read_table(outs[name]).column("feature"))
        assert np.isnan(feats[crop_index < 0]).all()
        np.testing.assert_array_equal(feats[crop_index >= 0], ref)
        assert read_provenance(outs[name])["device"] == "cpu"
    assert pq.read_table(outs["cpu"]).equals(pq.read_table(outs["default"]))


def test_corpus_features_on_cpu_match_the_default(processed, encoder, tmp_path):
    src = processed[0]
    shard = tmp_path / "shard=00000"
    shard.mkdir()
    for f in ("frames.parquet", "crops.npy"):
        shutil.copy(src / f, shard / f)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    n = write_corpus_features(str(encoder), [str(shard / "frames.parquet")], str(a), 3, 72, 64, {}, batch_size=8)
    assert n > 0
    write_corpus_features(str(encoder), [str(shard / "frames.parquet")], str(b), 3, 72, 64, {}, batch_size=8,
                          device="cpu")
    assert pq.read_table(a).equals(pq.read_table(b))


def test_embed_crops_empty_and_finetune_cpu_is_the_default_run(tmp_path, encoder):
    from sslfer.evaluate.finetune import finetune

    net, _ = load_encoder(str(encoder))
    assert embed_crops(net, np.zeros((2, 32, 32, 3), np.uint8), np.zeros(0, np.int64), 36, 32, device="cpu").size == 0
    rng = np.random.default_rng(0)
    n = 24
    crops = rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8)
    pd.DataFrame({"crop_index": np.arange(n), "label": np.arange(n) % 2,
                  "split": ["train"] * 16 + ["test"] * 8}).to_parquet(tmp_path / "items.parquet")
    np.save(tmp_path / "crops.npy", crops)
    settings = {"epochs": 1, "lr": 1e-3, "weight_decay": 5e-4, "batch_size": 8}
    args = (str(encoder), str(tmp_path / "items.parquet"), str(tmp_path / "crops.npy"), 2, ["a", "b"], 32, 32,
            settings)
    default = finetune(*args, seed=3, run="r", dataset="d")
    cpu = finetune(*args, seed=3, run="r", dataset="d", device="cpu")
    assert cpu["history"] == default["history"] and cpu["expression"] == default["expression"]


# --- on a GPU ----------------------------------------------------------------------------------------------

@pytest.mark.skipif(NO_GPU, reason="no CUDA device")
def test_cuda_features_match_the_cpu(encoder):
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (70, 128, 128, 3), dtype=np.uint8)
    rows = rng.permutation(70)[:53]
    net, _ = load_encoder(str(encoder))
    cpu = embed_crops(net, crops, rows, 72, 64, batch_size=16, device="cpu")
    net, _ = load_encoder(str(encoder))
    gpu = embed_crops(net, crops, rows, 72, 64, batch_size=16, device="cuda")
    assert gpu.shape == cpu.shape and gpu.dtype == np.float32
    np.testing.assert_allclose(gpu, cpu, rtol=1e-2, atol=1e-3 * np.abs(cpu).max())
    assert resolve_device("auto").type == "cuda"
    assert describe("cuda").startswith(f"device: cuda:{torch.cuda.current_device()} ({torch.cuda.get_device_name()}")


def test_the_gpu_figures_script_runs_on_the_cpu_at_toy_size():
    # the one script a lent GPU machine runs (benchmarks/gpu_figures.py): kept working where no GPU is
    import subprocess
    import sys

    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_figures.py"), "--device", "cpu", "--size", "32",
                          "--batch", "8", "--steps", "1", "--features", "16", "--backbones", "resnet18"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = res.stdout.splitlines()
    assert any(r.startswith("resnet18 32px x8 fp32") for r in rows)
    assert any(r.startswith("resnet18 32px x8 bf16 channels_last") for r in rows)
    assert any(r.startswith("cpu 32px") for r in rows) and any("not measured" in r for r in rows)
