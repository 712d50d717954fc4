"""Frozen-encoder features of aligned crops, extracted once and cached as Parquet.

Every encoder sees a crop the same way, whatever its training augmentations were: the 128 px crop resized
to ``evaluation.view.resize`` and centre-cropped to ``evaluation.view.crop``, ImageNet-normalised
(:func:`~sslfer.train.image_ops.centre_view`). Features are the backbone's pooled output (the projection
head is not used downstream, as in the reference).

``device`` (the config key ``device``, see :mod:`sslfer.device`) picks where the encoder runs. Crops go in
batches of ``batch_size``; on a GPU each batch is gathered from the memory map into one of two pinned host
buffers and copied asynchronously, so reading batch k+1 overlaps the forward pass of batch k, and the
features stay on the GPU until the end. ``amp`` (GPU only, off by default) runs the forward pass in
bfloat16 autocast. On the CPU the numbers are exactly those of a plain ``net(preprocess(crops[rows]))``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from tqdm import tqdm

from ..files import sha256_file
from ..jpeg_store import open_images
from ..device import describe, resolve_device
from ..layout import shard_of
from ..parquet import write_parquet
from ..train.image_ops import centre_view as preprocess
from ..train.model import load_encoder

log = logging.getLogger(__name__)


@torch.no_grad()
def embed_crops(net: torch.nn.Module, crops: np.ndarray, rows: np.ndarray, resize: int, crop: int,
                batch_size: int = 256, device: str | torch.device = "cpu", desc: str = "features",
                amp: bool = False) -> np.ndarray:
    """Features ``(len(rows), d)`` float32 of ``crops[rows]`` (a memory-mapped uint8 array), on ``device``."""
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    net = net.to(dev).eval()
    if cuda:
        net = net.to(memory_format=torch.channels_last)
        staging = [torch.empty((batch_size,) + crops.shape[1:], dtype=torch.uint8).pin_memory() for _ in range(2)]
        copied: list[torch.cuda.Event | None] = [None, None]
    out = []
    for k, start in enumerate(tqdm(range(0, len(rows), batch_size), desc=desc, mininterval=5.0, unit="batch")):
        idx = rows[start:start + batch_size]
        order = np.argsort(idx)
        if cuda:
            slot = k % 2
            if copied[slot] is not None:
                copied[slot].synchronize()                      # its previous copy to the GPU is done
            host = staging[slot][:len(idx)]
            host.numpy()[order] = crops[idx[order]]             # sorted reads from the memory map
            x = host.to(dev, non_blocking=True)
            copied[slot] = torch.cuda.Event()
            copied[slot].record()
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                y = net(preprocess(x, resize, crop).contiguous(memory_format=torch.channels_last))
            out.append(y.float())
        else:
            batch = np.empty((len(idx),) + crops.shape[1:], np.uint8)
            batch[order] = crops[idx[order]]                    # sorted reads from the memory map
            out.append(net(preprocess(torch.from_numpy(batch), resize, crop)).float().numpy())
    if not out:
        return np.zeros((0, 0), np.float32)
    return torch.cat(out).cpu().numpy() if cuda else np.concatenate(out)


def feature_column(features: np.ndarray, valid: np.ndarray, dim: int) -> pa.Array:
    """``fixed_size_list<float32, dim>`` column, null where not ``valid``."""
    full = np.zeros((len(valid), dim), np.float32)
    full[valid] = features
    col = pa.FixedSizeListArray.from_arrays(pa.array(full.reshape(-1), pa.float32()), dim)
    return pc.if_else(pa.array(valid), col, pa.nulls(len(valid), col.type))


def features_numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """``(n, d)`` float32 from a feature column (null rows → NaN)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    dim = column.type.list_size
    out = np.full((len(column), dim), np.nan, np.float32)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    if valid.any():
        out[valid] = column.filter(pa.array(valid)).flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
    return out


def write_item_features(encoder: str, items: str, crops_npy: str, out: str, resize: int, crop: int,
                        provenance: dict, batch_size: int = 256, keep: tuple[str, ...] = ("item_id",),
                        device: str | torch.device = "cpu", amp: bool = False) -> int:
    """Features of every item with a crop (``crop_index >= 0``); one row per item, null feature otherwise."""
    device = resolve_device(device)
    log.info("%s", describe(device))
    net, record = load_encoder(encoder)
    tab = pq.read_table(items)
    crop_index = tab.column("crop_index").to_numpy()
    valid = crop_index >= 0
    crops = np.load(crops_npy, mmap_mode="r")
    feats = embed_crops(net, crops, crop_index[valid], resize, crop, batch_size, device,
                        desc=Path(items).parent.name, amp=amp)
    dim = record["feature_dim"]
    table = pa.table({**{k: tab.column(k) for k in keep}, "feature": feature_column(feats, valid, dim)})
    write_parquet(table, out, dict(provenance, encoder=str(encoder), encoder_sha256=sha256_file(encoder),
                                   device=str(device), n_items=tab.num_rows, n_features=int(valid.sum())))
    log.info("features: %d of %d items (dim %d) from %s", int(valid.sum()), tab.num_rows, dim, encoder)
    return int(valid.sum())


def sample_corpus_frames(frame_files: list[str], per_track: int) -> pa.Table:
    """Up to ``per_track`` evenly spaced frames with crops per track, from every shard (for the identity leak)."""
    parts = []
    for f in frame_files:
        t = pq.read_table(f, columns=["video_id", "identity", "frame_idx", "crop_index"])
        t = t.filter(pc.greater_equal(t.column("crop_index"), 0))
        vids = np.asarray(t.column("video_id").to_pylist(), dtype=object)
        keep = np.zeros(t.num_rows, bool)
        for v in dict.fromkeys(vids):
            rows = np.flatnonzero(vids == v)
            keep[rows[np.unique(np.linspace(0, len(rows) - 1, min(per_track, len(rows))).round().astype(int))]] = True
        t = t.filter(pa.array(keep))
        parts.append(t.append_column("shard", pa.array(np.full(t.num_rows, shard_of(f), np.int32))))
    return pa.concat_tables(parts)


def write_corpus_features(encoder: str, frame_files: list[str], out: str, per_track: int, resize: int, crop: int,
                          provenance: dict, batch_size: int = 256, device: str | torch.device = "cpu",
                          amp: bool = False) -> int:
    """Features of a sample of the pretraining corpus's frames (``video_id``, ``identity``, ``frame_idx``)."""
    device = resolve_device(device)
    log.info("%s", describe(device))
    net, record = load_encoder(encoder)
    sample = sample_corpus_frames(frame_files, per_track)
    shards = sample.column("shard").to_numpy()
    crop_index = sample.column("crop_index").to_numpy()
    feats = np.zeros((sample.num_rows, record["feature_dim"]), np.float32)
    for f in frame_files:
        s = shard_of(f)
        rows = np.flatnonzero(shards == s)
        if len(rows):
            crops = open_images(Path(f).parent / "crops.npy")
            feats[rows] = embed_crops(net, crops, crop_index[rows], resize, crop, batch_size, device,
                                     desc=f"corpus shard {s}", amp=amp)
    table = pa.table({"video_id": sample.column("video_id"), "identity": sample.column("identity"),
                      "frame_idx": sample.column("frame_idx"),
                      "feature": feature_column(feats, np.ones(len(feats), bool), record["feature_dim"])})
    write_parquet(table, out, dict(provenance, encoder=str(encoder), encoder_sha256=sha256_file(encoder),
                                   device=str(device), per_track=per_track))
    log.info("corpus features: %d frames of %d tracks", sample.num_rows, len(set(sample.column("video_id").to_pylist())))
    return sample.num_rows
