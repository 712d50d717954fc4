"""Readers of the evaluation datasets in their real on-disk layouts (``docs/datasets.md``): one module per family
(:mod:`.affectnet`, :mod:`.fer2013`, :mod:`.lfw`), the item table they share in :mod:`.items`.

Every reader returns an :class:`EvalDataset`: one row per item, every item accounted for, and a generator
of the items' pixels. Common columns:

==========  ================================================================================================
item_id     stable, unique string (AffectNet: ``subDirectory_filePath`` or ``train_set/<n>``; FER2013:
            ``fer2013/<row>`` or ``train/<class>/<file>``; LFW: ``<Name>_<nnnn>`` / ``people/<Name>/<k>``)
split       ``train`` / ``val`` / ``test`` (null for LFW: its protocols make their own folds and splits)
path        the image file (null where pixels come from a table: FER2013's CSV, LFW's people loader)
label       the dataset's own class index (AffectNet 0–7, FER2013 0–6); -1 where there is none
valence     float, NaN where there is none (AffectNet's -2 "not annotated" becomes NaN and is counted)
arousal     as valence
identity    the LFW person ("George W Bush", scikit-learn's spelling); null otherwise
status      ``ok`` or why the item cannot be used (below); ``error`` names the file, line or path
==========  ================================================================================================

Statuses set here: ``malformed_row`` (wrong column count, unparsable number, landmarks that are not 136
values, label outside the dataset's range), ``excluded_class`` (AffectNet 8 None, 9 Uncertain, 10 No-Face),
``missing_image``, ``missing_annotation`` (AffectNet .npy release: an image without its ``_exp.npy``),
``unknown_class`` (FER2013 folder name), ``duplicate_item`` (a second row for the same item), and
``decode_error`` (LFW: scikit-learn's loader failed on a chunk). Nothing raises on a bad row.

Splits: AffectNet ``training.csv`` / ``train_set`` → train, ``validation.csv`` / ``val_set`` → test (the
official validation set is the usual test set; model selection uses a split of train). FER2013:
``Training`` → train, ``PrivateTest`` → val, ``PublicTest`` → test; folder variant ``train/`` → train, ``test/`` → test. Nothing here selects on a test split.

Extras: AffectNet ``bbox`` (x1, y1, x2, y2 from ``face_x, face_y, face_width, face_height``; null in the
.npy release or for an empty box) and ``landmarks`` (the dataset's 68 points, image pixels; null when
absent); FER2013 CSV ``csv_row`` (0-based data row, the row of the pixels); LFW ``role`` (``pairs``: an
image of ``pairs.txt``, ``people``: an image of the identification set) and the pairs table.
"""

from __future__ import annotations

from pathlib import Path

from .affectnet import read_affectnet_csv, read_affectnet_npy
from .fer2013 import read_fer2013_csv, read_fer2013_folders
from .items import EvalDataset
from .lfw import read_lfw


def read_dataset(name: str, cfg: dict, scratch: str | Path | None = None) -> EvalDataset:
    """The reader for config ``datasets.<name>`` (``format`` chooses the release where there are several)."""
    fmt = cfg.get("format")
    if name == "affectnet":
        readers = {"affectnet_csv": read_affectnet_csv, "affectnet_npy": read_affectnet_npy}
        fmt = fmt or "affectnet_csv"
    elif name == "fer2013":
        readers = {"fer2013_csv": read_fer2013_csv, "fer2013_folders": read_fer2013_folders}
        fmt = fmt or "fer2013_csv"
    elif name == "lfw":
        return read_lfw(cfg["data_home"], cfg.get("min_faces_per_person", 4), scratch)
    else:
        raise ValueError(f"unknown evaluation dataset {name!r} (affectnet, fer2013, lfw)")
    if fmt not in readers:
        raise ValueError(f"config datasets.{name}.format: {fmt!r} is not one of {', '.join(readers)}")
    return readers[fmt](cfg["path"])
