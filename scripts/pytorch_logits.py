#!/usr/bin/env python3
"""PyTorch's logits for the Fashion-MNIST test set, from a served model's checkpoint.

The reference half of scripts/compare-with-pytorch.ts: builds the DenseNet described by the
checkpoint's own metadata (`config`, `mean`, `std`, as training/train.py writes them) in
torchvision's module layout, loads the weights strictly, and writes logits [N, classes] (F32)
and the true labels to a safetensors file.

    python3 scripts/pytorch_logits.py --weights models/fashion-mnist-densenet/weights.safetensors \
        --data test/fixtures/fashion-mnist --out /tmp/pytorch-logits.safetensors

Needs torch, safetensors and numpy (pip install torch==2.13.0+cpu safetensors numpy).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "training"))
import fashion_mnist  # noqa: E402
from reference_densenet import DenseNet, DenseNetConfig  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="folder with t10k-*-idx*-ubyte.gz")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    with safe_open(str(args.weights), "pt") as f:
        meta = f.metadata()
    mean = np.float32(json.loads(meta["mean"])[0])
    std = np.float32(json.loads(meta["std"])[0])
    model = DenseNet(DenseNetConfig.from_ts_config(json.loads(meta["config"])))
    model.load_state_dict(load_file(str(args.weights)), strict=True)
    model.eval()
    torch.set_num_threads(2)

    images, labels = fashion_mnist.load_split("t10k", args.data)
    x = torch.from_numpy(((images.astype(np.float32) / 255.0 - mean) / std)[:, None, :, :])
    with torch.no_grad():
        logits = torch.cat([model(x[i:i + 500]) for i in range(0, len(x), 500)])
    save_file({"logits": logits.contiguous(), "labels": torch.from_numpy(labels.astype(np.int64))}, str(args.out))
    print(f"{len(x)} images, torch accuracy {(logits.argmax(1).numpy() == labels).mean():.4f}")


if __name__ == "__main__":
    main()
