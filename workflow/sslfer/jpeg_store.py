"""JPEG-encoded image arrays: many same-sized RGB images in one memory-mappable ``.npy`` file.

The file is a 1-D uint8 ``.npy`` array: a header of int64 values — the number of images ``n``, their height
and width, then ``n + 1`` byte offsets into the data — followed by the images' JPEG files back to back. Image
``i`` is bytes ``offsets[i]:offsets[i + 1]`` of the data. A raw crop array (``npy.atomic_crops``) is 4-D, so
:func:`open_images` tells the two apart by the array's shape and returns an object indexed like the raw array
(``images[i]``, ``images[rows]``, ``.shape``, ``.dtype``), decoding on read. Encoding is deterministic
(same images and quality, same bytes). An empty entry (a slot never filled) reads back as a black image,
as an unwritten slot of a raw array does.

:func:`image_slots` is the one writer of both kinds (the ``storage`` config keys of ``preprocess`` and ``swap``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from .files import atomic_path
from .npy import atomic_crops, make_room

#: The values of the ``storage`` config keys.
STORAGES = ("raw", "jpeg")


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """The JPEG file of an RGB uint8 image."""
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"OpenCV could not encode an image of shape {rgb.shape} as JPEG")
    return buf.tobytes()


def write_jpeg_array(path: str | Path, images: Sequence[bytes], height: int, width: int) -> None:
    """Write already encoded JPEG files (all ``height`` × ``width``) as one array file, atomically."""
    path = Path(path)
    sizes = np.array([len(b) for b in images], np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    header = np.concatenate([[len(images), height, width], offsets]).astype("<i8")
    blob = np.empty(header.nbytes + int(offsets[-1]), np.uint8)
    make_room(path, blob.nbytes)
    blob[:header.nbytes] = header.view(np.uint8)
    for b, start in zip(images, header.nbytes + offsets[:-1]):     # each file into place, no joined copy
        blob[start:start + len(b)] = np.frombuffer(b, np.uint8)
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, blob)


class JpegImages:
    """A JPEG array file opened for reading: indexed like a ``(n, h, w, 3)`` uint8 array, decoded on read."""

    def __init__(self, blob: np.ndarray, path: str | Path = "") -> None:
        head = np.frombuffer(blob[:24].tobytes(), "<i8")
        n, h, w = (int(v) for v in head)
        self.offsets = np.frombuffer(blob[24:24 + 8 * (n + 1)].tobytes(), "<i8")
        self.data = blob[24 + 8 * (n + 1):]
        self.shape, self.dtype, self.path = (n, h, w, 3), np.dtype(np.uint8), str(path)
        if len(self.data) != self.offsets[-1]:
            raise ValueError(f"{path}: JPEG array is truncated ({len(self.data)} of {self.offsets[-1]} data bytes)")

    def __len__(self) -> int:
        return self.shape[0]

    def _one(self, i: int) -> np.ndarray:
        if not -len(self) <= i < len(self):
            raise IndexError(f"{self.path}: image {i} out of range ({len(self)} images)")
        i %= len(self)
        if self.offsets[i] == self.offsets[i + 1]:
            return np.zeros(self.shape[1:], np.uint8)
        raw = np.asarray(self.data[self.offsets[i]:self.offsets[i + 1]])
        img = cv2.imdecode(raw, cv2.IMREAD_COLOR)
        if img is None or img.shape != self.shape[1:]:
            raise ValueError(f"{self.path}: image {i} does not decode to {self.shape[1:]}")
        return img[..., ::-1]

    def __getitem__(self, index: int | np.integer | np.ndarray | Sequence[int]) -> np.ndarray:
        if np.isscalar(index) or (isinstance(index, np.ndarray) and index.ndim == 0):
            return self._one(int(index))
        rows = np.asarray(index, np.int64)
        out = np.empty((len(rows),) + self.shape[1:], np.uint8)
        for k, i in enumerate(rows):
            out[k] = self._one(int(i))
        return out


class JpegSlots:
    """``n`` image slots filled in any order, each encoded when it is set; written by :func:`image_slots`.

    Indexed for writing like the raw memory map it stands in for: ``slots[k] = image`` stores one image and
    ``slots[a:b] = 0`` empties slots again (they then read back as zeros).
    """

    def __init__(self, n: int, quality: int) -> None:
        self.files: list[bytes] = [b""] * n
        self.quality = int(quality)

    def __setitem__(self, index: int | slice, image: np.ndarray | int) -> None:
        if isinstance(index, slice):
            if not np.isscalar(image) or image != 0:
                raise ValueError("JpegSlots: a range of slots can only be emptied (set to 0)")
            for k in range(*index.indices(len(self.files))):
                self.files[k] = b""
        else:
            self.files[index] = encode_jpeg(image, self.quality)


@contextmanager
def image_slots(path: str | Path, n: int, size: int, storage: str = "raw",
                quality: int = 90) -> Iterator[np.memmap | JpegSlots]:
    """Yield ``n`` writable ``size`` × ``size`` RGB slots that become ``path`` when the block ends normally.

    ``storage`` ``raw``: a memory map (:func:`sslfer.npy.atomic_crops`); ``jpeg``: :class:`JpegSlots`, whose
    encoded files (a few KB each) are held in memory and written in one go. Either way nothing is left at
    ``path`` when the block raises.
    """
    if storage not in STORAGES:
        raise ValueError(f"unknown image storage {storage!r} (one of {', '.join(STORAGES)})")
    if storage == "raw":
        with atomic_crops(path, n, size) as images:
            yield images
        return
    slots = JpegSlots(n, quality)
    yield slots
    write_jpeg_array(path, slots.files, size, size)


def open_images(path: str | Path) -> np.ndarray | JpegImages:
    """An image array file for reading: a raw ``(n, h, w, 3)`` uint8 memory map, or a :class:`JpegImages`."""
    arr = np.load(path, mmap_mode="r")
    if arr.ndim == 4:
        return arr
    if arr.ndim == 1 and arr.dtype == np.uint8:
        return JpegImages(arr, path)
    raise ValueError(f"{path}: neither an image array (n, h, w, 3) nor a JPEG array file (shape {arr.shape})")
