#!/usr/bin/env python3
"""Seeded DenseNet weights and a check batch for the engine bench (bench/engine.ts).

Builds the network of a DenseNetConfig (given as our TypeScript config JSON) in torchvision's
module layout (scripts/reference_densenet.py), initialises it from a seed, gives every
BatchNorm the running statistics of real forward passes (zero means and unit variances would
make each BN nearly an affine no-op and hide a candidate that ignores them), and writes:

  --weights  torchvision-named state_dict, F32 safetensors, metadata: config, seed, generator
  --check    `input`: a seeded NHWC float32 batch of image-like values (smooth, normalised),
             the batch every candidate's logits are compared on

Same seed, same files: the bench caches them under bench/.cache/ and every candidate loads
these weights. Needs torch, safetensors, numpy (pip install torch==2.13.0+cpu safetensors numpy).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")  # NNPACK warnings on unsupported CPUs

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))
from reference_densenet import DenseNet, DenseNetConfig  # noqa: E402

CALIBRATION_BATCHES = 2
CALIBRATION_BATCH_SIZE = 8


def image_like(n: int, c: int, size: int) -> torch.Tensor:
    """NCHW, smooth like a photo and normalised like torchvision's ImageNet preprocessing."""
    coarse = torch.rand(n, c, max(2, size // 8), max(2, size // 8))
    img = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    img = (img + 0.05 * torch.randn_like(img)).clamp(0, 1)
    return (img - 0.45) / 0.226


@torch.no_grad()
def make(cfg: DenseNetConfig, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = DenseNet(cfg)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias, 0.0, 0.1)
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration passes
        elif isinstance(m, nn.Linear):
            # Logits of a few units, so the bench's relative tolerance is not just its 1e-3 floor.
            nn.init.normal_(m.weight, 0.0, 2.0 / m.in_features ** 0.5)
    model.train()
    for _ in range(CALIBRATION_BATCHES):
        model(image_like(CALIBRATION_BATCH_SIZE, cfg.input_channels, cfg.input_size))
    model.eval()
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, help="DenseNetConfig JSON (src/densenet/config.ts)")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--check", type=Path, required=True)
    ap.add_argument("--check-batch", type=int, default=4)
    args = ap.parse_args()

    torch.set_num_threads(2)  # summation order (hence the last bits) depends on it
    cfg = DenseNetConfig.from_ts_config(json.loads(args.config))
    model = make(cfg, args.seed)
    torch.manual_seed(args.seed + 1)
    check = image_like(args.check_batch, cfg.input_channels, cfg.input_size)
    meta = {"config": args.config, "seed": str(args.seed), "generator": "bench/engine/python/make-weights.py",
            "torch": torch.__version__}
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    args.weights.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(args.weights), metadata={"format": "pt", **meta})
    save_file({"input": check.permute(0, 2, 3, 1).contiguous()}, str(args.check), metadata=meta)
    with torch.no_grad():
        logits = model(check)
    print(f"make-weights: {sum(p.numel() for p in model.parameters()):,} params, "
          f"check batch {args.check_batch}, max|logit| {logits.abs().max().item():.3f}", file=sys.stderr)


if __name__ == "__main__":
    main()
