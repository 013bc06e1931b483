#!/usr/bin/env python3
"""Independent verdicts for the bad-input corpus's bit-flipped images.

Whether a JPEG, WebP, GIF, TIFF or AVIF file with flipped bits is still an image is for a decoder
to say. bad-input.test.ts must not take that answer from the service's own preprocessing (the
code under test), so this script asks another decoder: Pillow, which torchvision training and
evaluation use. For each image it records whether Pillow decodes the file fully
(Image.open(...).load(), truncated images not tolerated) and the size its header declares, keyed
by the SHA-256 of the bytes, in bit-flipped-pil-verdicts.json next to this script.

Run from the repository root, with Pillow (AVIF support: Pillow >= 11.2) importable:
    python3 test/reliability/pil-verdicts.py
It builds the images with the corpus's own generator (dump-decoder-images.ts, through npx tsx).
npm test does not need Pillow: it reads the committed JSON. Rerun when the corpus's images change
(a new seed, generator, or sharp/libvips encoder): the test names any image without a verdict.
"""
import hashlib
import io
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import PIL
from PIL import Image, features

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OUT = HERE / "bit-flipped-pil-verdicts.json"
# Pillow's own decompression-bomb error threshold: a header declaring more is not loaded, only
# its size recorded (far above any limit the service is run with in the test).
LOAD_AT_MOST_PIXELS = 2 * Image.MAX_IMAGE_PIXELS


def verdict(data: bytes) -> dict:
    size = None
    fmt = None
    try:
        with Image.open(io.BytesIO(data)) as image:
            size = list(image.size)
            fmt = image.format
            if size[0] * size[1] > LOAD_AT_MOST_PIXELS:
                return {"decodes": None, "format": fmt, "size": size, "error": "not loaded: declared size over Pillow's bomb limit"}
            image.load()
        return {"decodes": True, "format": fmt, "size": size}
    except Exception as err:  # any failure to open or decode is a verdict, not a script error
        # Without object addresses ("<_io.BytesIO object at 0x…>"), so reruns give the same file.
        out = {"decodes": False, "error": re.sub(r" at 0x[0-9a-f]+", "", f"{type(err).__name__}: {err}")}
        if fmt is not None:
            out["format"] = fmt
        if size is not None:
            out["size"] = size
        return out


def main() -> None:
    Image.MAX_IMAGE_PIXELS = None  # open() reads any declared size; verdict() decides what to load
    for feature in ("jpg", "webp", "avif", "libtiff", "zlib"):
        if not features.check(feature):
            sys.exit(f"Pillow {PIL.__version__} lacks {feature}: its verdicts would be about the build, not the files")
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(["npx", "tsx", "test/reliability/dump-decoder-images.ts", folder], cwd=ROOT, check=True)
        manifest = json.loads((Path(folder) / "manifest.json").read_text())
        images = {}
        for entry in manifest["images"]:
            data = (Path(folder) / entry["file"]).read_bytes()
            images[hashlib.sha256(data).hexdigest()] = {"name": entry["name"], **verdict(data)}
    OUT.write_text(json.dumps({
        "generator": "test/reliability/pil-verdicts.py",
        "pillow": PIL.__version__,
        "imagesFrom": {"sharp": manifest["sharp"], "vips": manifest["vips"]},
        "images": images,
    }, indent=2) + "\n")
    print(f"{len(images)} verdicts ({sum(v['decodes'] is True for v in images.values())} decode) -> {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
