"""Fashion-MNIST straight from its idx .gz files (no torchvision).

idx format: big-endian. Images: magic 0x00000803, then u32 count, rows, cols (16-byte header),
then count·rows·cols unsigned bytes. Labels: magic 0x00000801, then u32 count (8-byte header),
then count unsigned bytes. We check the magic, the header against the payload size and that
image and label counts agree.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

# Index order, as the dataset defines it (see /work/shared/docs/densenet.md).
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

EXPECTED_COUNTS = {"train": 60_000, "t10k": 10_000}


class IdxFormatError(ValueError):
    pass


def _read_gz(path: Path) -> bytes:
    with gzip.open(path, "rb") as f:
        return f.read()


def parse_idx_images(data: bytes, name: str = "images") -> np.ndarray:
    """Returns uint8 [N, rows, cols]."""
    if len(data) < 16:
        raise IdxFormatError(f"{name}: {len(data)} bytes, shorter than the 16-byte idx3 header")
    magic, count, rows, cols = struct.unpack(">IIII", data[:16])
    if magic != IMAGES_MAGIC:
        raise IdxFormatError(f"{name}: magic 0x{magic:08x}, expected 0x{IMAGES_MAGIC:08x} (idx3 unsigned byte)")
    expected = 16 + count * rows * cols
    if len(data) != expected:
        raise IdxFormatError(f"{name}: header says {count}×{rows}×{cols} ({expected} bytes), file has {len(data)} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, cols)


def parse_idx_labels(data: bytes, name: str = "labels") -> np.ndarray:
    """Returns uint8 [N]."""
    if len(data) < 8:
        raise IdxFormatError(f"{name}: {len(data)} bytes, shorter than the 8-byte idx1 header")
    magic, count = struct.unpack(">II", data[:8])
    if magic != LABELS_MAGIC:
        raise IdxFormatError(f"{name}: magic 0x{magic:08x}, expected 0x{LABELS_MAGIC:08x} (idx1 unsigned byte)")
    if len(data) != 8 + count:
        raise IdxFormatError(f"{name}: header says {count} labels ({8 + count} bytes), file has {len(data)} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=8)


def load_split(split: str, root: Path = DEFAULT_DIR) -> tuple[np.ndarray, np.ndarray]:
    """Loads 'train' or 't10k' as (uint8 images [N, 28, 28], int64 labels [N])."""
    if split not in EXPECTED_COUNTS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(EXPECTED_COUNTS)}")
    root = Path(root)
    img_path = root / f"{split}-images-idx3-ubyte.gz"
    lbl_path = root / f"{split}-labels-idx1-ubyte.gz"
    images = parse_idx_images(_read_gz(img_path), img_path.name)
    labels = parse_idx_labels(_read_gz(lbl_path), lbl_path.name)
    if images.shape[0] != labels.shape[0]:
        raise IdxFormatError(f"{split}: {images.shape[0]} images but {labels.shape[0]} labels")
    if images.shape[0] != EXPECTED_COUNTS[split]:
        raise IdxFormatError(f"{split}: {images.shape[0]} examples, Fashion-MNIST has {EXPECTED_COUNTS[split]}")
    if images.shape[1:] != (28, 28):
        raise IdxFormatError(f"{split}: images are {images.shape[1]}×{images.shape[2]}, expected 28×28")
    if labels.max() >= len(CLASS_NAMES):
        raise IdxFormatError(f"{split}: label {int(labels.max())} out of range 0..{len(CLASS_NAMES) - 1}")
    return images, labels.astype(np.int64)


def mean_std(images: np.ndarray) -> tuple[float, float]:
    """Mean and (population) std over all pixels of uint8 images scaled to [0, 1].

    Exact and cheap: a histogram of the 256 byte values instead of a float copy of the set.
    """
    counts = np.bincount(np.ascontiguousarray(images).reshape(-1), minlength=256).astype(np.float64)
    values = np.arange(256, dtype=np.float64) / 255.0
    n = counts.sum()
    mean = float((counts * values).sum() / n)
    var = float((counts * (values - mean) ** 2).sum() / n)
    return mean, var**0.5
