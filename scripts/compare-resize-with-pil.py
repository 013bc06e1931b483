#!/usr/bin/env python3
"""Compare our resize-crop (sharp/libvips) with torchvision's Resize(256) + CenterCrop(224) on PIL.

For each photo, the reference is what torchvision's evaluation transform feeds a network before
ToTensor/Normalize: `Image.open(p).convert('RGB')`, `Resize(256)` (shorter side to 256, longer
`int(256 * long / short)`, PIL `Image.resize` with the chosen filter, which PIL always antialiases
by scaling the filter support with the reduction factor) and `CenterCrop(224)` (offset
`int(round((size - 224) / 2))`). torchvision is not needed: those three steps are reproduced here
with PIL directly.

Ours comes from `npx tsx scripts/preprocess-dump.ts`, which runs the served pipeline
(src/inference/preprocess) and writes 8-bit RGB. The script prints, per photo, the mean and
maximum absolute difference in 0..255 units and the share of values off by more than 2.

Usage, from the repository root (needs Pillow and numpy; Node for the dump):

    python3 scripts/compare-resize-with-pil.py                      # the skimage photos, bilinear
    python3 scripts/compare-resize-with-pil.py --interpolation bicubic
    python3 scripts/compare-resize-with-pil.py --variant ours --variant decode --variant sharp:kernel=lanczos3
    python3 scripts/compare-resize-with-pil.py path/to/a.jpg path/to/b.png

The default photos are the ones Debian's python3-skimage ships (skimage/data); pass files to use
others. Variants are those of scripts/preprocess-dump.ts; 'decode' compares full-size decodes
(no resize), which isolates JPEG decoder differences from resize differences.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
PHOTOS = [
    "astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "coffee.png",
    "coins.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "moon.png",
    "motorcycle_left.png", "retina.jpg", "rocket.jpg",
]
PIL_FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}


def skimage_data_dir() -> Path:
    try:
        import skimage  # noqa: PLC0415

        d = Path(os.path.dirname(skimage.__file__)) / "data"
        if d.is_dir():
            return d
    except ImportError:
        pass
    d = Path("/usr/lib/python3/dist-packages/skimage/data")
    if d.is_dir():
        return d
    sys.exit("skimage's sample photos not found: install python3-skimage or pass image files")


def torchvision_resize_crop(img: Image.Image, shorter: int, size: int, resample: int) -> Image.Image:
    w, h = img.size
    if w <= h:
        ow, oh = shorter, int(shorter * h / w)
    else:
        ow, oh = int(shorter * w / h), shorter
    if (ow, oh) != (w, h):
        img = img.resize((ow, oh), resample)
    left = int(round((ow - size) / 2.0))
    top = int(round((oh - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def run_dump(variant: str, paths: list[Path], tmp: Path, args: argparse.Namespace) -> list[Path]:
    tag = "".join(c if c.isalnum() else "_" for c in variant)
    outs = [tmp / f"{i}.{tag}.raw" for i in range(len(paths))]
    cmd = ["npx", "tsx", "scripts/preprocess-dump.ts", "--variant", variant,
           "--interpolation", args.interpolation, "--size", str(args.size), "--shorter", str(args.shorter)]
    for p, o in zip(paths, outs):
        cmd += [str(p), str(o)]
    subprocess.run(cmd, cwd=REPO, check=True)
    return outs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("images", nargs="*", type=Path)
    ap.add_argument("--interpolation", choices=sorted(PIL_FILTERS), default="bilinear")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--shorter", type=int, default=256)
    ap.add_argument("--variant", action="append", dest="variants",
                    help="a variant of preprocess-dump.ts (repeatable; default: ours)")
    args = ap.parse_args()

    paths = args.images or [skimage_data_dir() / name for name in PHOTOS]
    variants = args.variants or ["ours"]

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        outputs = {v: run_dump(v, paths, tmp, args) for v in variants}
        print(f"PIL {Image.__version__}, {args.interpolation}, Resize({args.shorter}) + CenterCrop({args.size}); "
              "differences in 0..255 units: mean / max / % of values off by > 2")
        print()
        print("| photo | size | " + " | ".join(variants) + " |")
        print("|---|---|" + "---|" * len(variants))
        totals = {v: [] for v in variants}
        for i, p in enumerate(paths):
            src = Image.open(p)
            src.load()
            rgb = src.convert("RGB")
            ref_full = np.asarray(rgb, dtype=np.int16)
            ref_crop = np.asarray(
                torchvision_resize_crop(rgb, args.shorter, args.size, PIL_FILTERS[args.interpolation]), dtype=np.int16)
            cells = []
            for v in variants:
                ref = ref_full if v == "decode" else ref_crop
                ours = np.fromfile(outputs[v][i], dtype=np.uint8).astype(np.int16)
                if ours.size != ref.size:
                    sys.exit(f"{p.name} {v}: {ours.size} values, PIL has {ref.size}")
                diff = np.abs(ours.reshape(ref.shape) - ref)
                totals[v].append(diff.mean())
                cells.append(f"{diff.mean():.2f} / {diff.max()} / {100 * (diff > 2).mean():.1f}%")
            print(f"| {p.name} | {src.size[0]}×{src.size[1]} {src.mode} | " + " | ".join(cells) + " |")
        print("| **mean** | | " + " | ".join(f"{np.mean(totals[v]):.2f}" for v in variants) + " |")


if __name__ == "__main__":
    main()
