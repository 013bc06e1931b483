#!/usr/bin/env python3
"""Generate the PyTorch reference fixtures in test/fixtures/reference/.

For each config below it builds a seeded DenseNet (scripts/reference_densenet.py, which uses
torchvision's module layout and state_dict key names), gives its BatchNorms realistic running
statistics, and writes:

  <name>.weights.safetensors  the full state_dict under torchvision's keys
                              (F16 for densenet121 to keep it ~16 MB, F32 otherwise;
                              num_batches_tracked as I64)
  <name>.io.safetensors       `input` (NHWC float32, our engine's layout) and
                              `logits` (float32 [N, classes], computed in float64)

Every file carries metadata: config (JSON shaped like src/densenet/config.ts's DenseNetConfig),
generator, torch version and seed. The TypeScript tests load the weights, run the input and
compare logits; they never run this script, and CI needs neither Python nor network.

It also writes parameter-counts.json: the trainable parameters (and BN running statistics) of
every preset in src/densenet/presets.ts and of the documented variants, counted on this PyTorch
model built from the paper's definitions (test/densenet/architecture.test.ts compares with it).
That step draws no random numbers (the models are built on the meta device), so it leaves the
fixtures above unchanged; `--parameter-counts-only` runs it alone.

Run from the repository root (it needs torch, safetensors and numpy from pip, not torchvision):

    pip install torch==2.13.0+cpu safetensors numpy
    python3 scripts/make-reference-fixtures.py [--parameter-counts-only]
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# On CPUs NNPACK does not support, torch logs a warning on every conv before falling back to
# its other kernels; this silences the log only, the kernels used are unchanged.
os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torch import nn  # noqa: E402

from reference_densenet import DenseNet, DenseNetConfig  # noqa: E402

OUT_DIR = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "reference"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CALIBRATION_BATCHES = 4
CALIBRATION_BATCH_SIZE = 8
# The tests' tolerance; the float32 forward must meet it against float64 before we trust it.
REL_TOL = 1e-4


@dataclass(frozen=True)
class Fixture:
    name: str
    cfg: DenseNetConfig
    batch: int
    seed: int
    f16: bool  # store weights as F16 (the reference is computed from the rounded values)
    expected_params: int


FIXTURES = [
    Fixture(
        "densenet121",
        DenseNetConfig(growth_rate=32, block_layers=(6, 12, 24, 16), bottleneck=True, compression=0.5,
                       stem="imagenet", stem_channels=64, input_size=224, input_channels=3, num_classes=1000),
        batch=2, seed=121, f16=True, expected_params=7_978_856,
    ),
    Fixture(
        "densenet_bc_100_k12",
        DenseNetConfig(growth_rate=12, block_layers=(16, 16, 16), bottleneck=True, compression=0.5,
                       stem="cifar", stem_channels=24, input_size=32, input_channels=3, num_classes=10),
        batch=4, seed=100, f16=False, expected_params=769_162,
    ),
    Fixture(
        "densenet_40_k12",
        DenseNetConfig(growth_rate=12, block_layers=(12, 12, 12), bottleneck=False, compression=1.0,
                       stem="cifar", stem_channels=16, input_size=32, input_channels=3, num_classes=10),
        batch=4, seed=40, f16=False, expected_params=1_019_722,
    ),
]


def image_like(n: int, c: int, size: int) -> torch.Tensor:
    """NCHW float32 that looks like a normalised photo: smooth, in [0,1] before mean/std.

    White noise would give every conv a very different input distribution from real data
    (no spatial correlation), so the BN statistics and logits would be atypical.
    """
    coarse = torch.rand(n, c, max(2, size // 8), max(2, size // 8))
    img = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    img = (img + 0.05 * torch.randn_like(img)).clamp(0, 1)
    mean = IMAGENET_MEAN if c == 3 else (sum(IMAGENET_MEAN) / 3,) * c
    std = IMAGENET_STD if c == 3 else (sum(IMAGENET_STD) / 3,) * c
    return (img - torch.tensor(mean).view(1, c, 1, 1)) / torch.tensor(std).view(1, c, 1, 1)


def init_weights(model: nn.Module) -> None:
    # Non-trivial gamma/beta so a test cannot pass while ignoring (or swapping) them.
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias, 0.0, 0.1)
        # nn.Linear keeps PyTorch's default init.


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, cfg: DenseNetConfig) -> None:
    # Zero means / unit variances would make every BN in eval mode (almost) an affine no-op and
    # hide mistakes such as ignoring running stats or epsilon. A cumulative average
    # (momentum=None) over a few train-mode passes gives the statistics a real net would have.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    for _ in range(CALIBRATION_BATCHES):
        model(image_like(CALIBRATION_BATCH_SIZE, cfg.input_channels, cfg.input_size))
    model.eval()


@torch.no_grad()
def round_to_f16(model: nn.Module) -> None:
    for t in model.state_dict().values():
        if t.is_floating_point():
            t.copy_(t.half().float())


def metadata(fx: Fixture) -> dict[str, str]:
    return {
        "config": json.dumps(fx.cfg.as_ts_config()),
        "generator": "scripts/make-reference-fixtures.py",
        "torch": torch.__version__,
        "seed": str(fx.seed),
    }


@torch.no_grad()
def make(fx: Fixture) -> None:
    start = time.perf_counter()
    torch.manual_seed(fx.seed)
    model = DenseNet(fx.cfg)
    init_weights(model)
    params = sum(p.numel() for p in model.parameters())
    assert params == fx.expected_params, f"{fx.name}: {params:,} parameters, expected {fx.expected_params:,}"

    calibrate_batchnorm(model, fx.cfg)
    if fx.f16:
        round_to_f16(model)

    x = image_like(fx.batch, fx.cfg.input_channels, fx.cfg.input_size)
    logits32 = model(x)
    # float64 is the reference; float32 only has to agree with it to the tests' tolerance,
    # which shows the tolerance is attainable by a correct float32 implementation.
    logits64 = copy.deepcopy(model).double()(x.double())
    max_logit = logits64.abs().max().item()
    err = (logits32.double() - logits64).abs().max().item()
    assert err <= REL_TOL * max(1.0, max_logit), f"{fx.name}: float32 vs float64 differ by {err:.3g}"

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    weights_path = OUT_DIR / f"{fx.name}.weights.safetensors"
    io_path = OUT_DIR / f"{fx.name}.io.safetensors"
    weights = {
        k: (v.half() if fx.f16 and v.is_floating_point() else v).contiguous()
        for k, v in model.state_dict().items()
    }
    save_file(weights, str(weights_path), metadata=metadata(fx))
    save_file(
        {
            "input": x.permute(0, 2, 3, 1).contiguous(),  # NCHW -> NHWC
            "logits": logits64.float().contiguous(),
        },
        str(io_path),
        metadata=metadata(fx),
    )

    print(
        f"{fx.name}: {params:,} params, max|logit| {max_logit:.4f}, "
        f"f32-vs-f64 max|Δ| {err:.3e} ({err / max(1.0, max_logit):.2e} rel), "
        f"{weights_path.name} {weights_path.stat().st_size:,} B, "
        f"{io_path.name} {io_path.stat().st_size:,} B, {time.perf_counter() - start:.1f} s"
    )


# ---- parameter counts (parameter-counts.json) ----------------------------------------------
# Configs written from Huang et al. 2017 (arXiv:1608.06993), not copied from presets.ts: ImageNet
# nets (Table 1) have a 7×7 stem of 2k filters, bottlenecks of 4k and θ = 0.5; the CIFAR nets
# (Table 2, Section 3) have a 3×3 stem of 16 filters (2k for BC) and three blocks of (L − 4) / 3
# layers, or (L − 4) / 6 bottleneck layers with θ = 0.5 for DenseNet-BC.


def imagenet_net(k: int, blocks: tuple[int, ...]) -> DenseNetConfig:
    return DenseNetConfig(growth_rate=k, block_layers=blocks, bottleneck=True, compression=0.5,
                          stem="imagenet", stem_channels=2 * k, input_size=224, input_channels=3, num_classes=1000)


def cifar_net(depth: int, k: int, bc: bool, *, classes: int = 10, channels: int = 3, size: int = 32) -> DenseNetConfig:
    n = (depth - 4) // (6 if bc else 3)
    return DenseNetConfig(growth_rate=k, block_layers=(n, n, n), bottleneck=bc, compression=0.5 if bc else 1.0,
                          stem="cifar", stem_channels=2 * k if bc else 16, input_size=size, input_channels=channels,
                          num_classes=classes)


PARAMETER_COUNT_CONFIGS = {
    "densenet121": imagenet_net(32, (6, 12, 24, 16)),
    "densenet161": imagenet_net(48, (6, 12, 36, 24)),
    "densenet169": imagenet_net(32, (6, 12, 32, 32)),
    "densenet201": imagenet_net(32, (6, 12, 48, 32)),
    "densenet264": imagenet_net(32, (6, 12, 64, 48)),
    "densenet-40-k12": cifar_net(40, 12, False),
    "densenet-100-k12": cifar_net(100, 12, False),
    "densenet-100-k24": cifar_net(100, 24, False),
    "densenet-bc-100-k12": cifar_net(100, 12, True),
    "densenet-bc-250-k24": cifar_net(250, 24, True),
    "densenet-bc-190-k40": cifar_net(190, 40, True),
    # Variants the docs quote: 100 classes, and Fashion-MNIST's 1-channel 28×28 input.
    "densenet-bc-100-k12/100-classes": cifar_net(100, 12, True, classes=100),
    "densenet-bc-100-k12/1x28x28": cifar_net(100, 12, True, channels=1, size=28),
    "densenet-bc-40-k12/1x28x28": cifar_net(40, 12, True, channels=1, size=28),
}


def count_parameters(cfg: DenseNetConfig) -> dict[str, int]:
    # The meta device allocates nothing and draws no random numbers: counting needs shapes only.
    with torch.device("meta"):
        model = DenseNet(cfg)
    running = sum(b.numel() for name, b in model.named_buffers() if name.endswith(("running_mean", "running_var")))
    return {"trainable": sum(p.numel() for p in model.parameters() if p.requires_grad), "bnRunningStats": running}


def write_parameter_counts() -> None:
    counts = {name: {"config": cfg.as_ts_config(), **count_parameters(cfg)} for name, cfg in PARAMETER_COUNT_CONFIGS.items()}
    for fx in FIXTURES:  # the fixtures' own check, made again on the meta-device build
        assert counts[fx.name.replace("_", "-")]["trainable"] == fx.expected_params, fx.name
    path = OUT_DIR / "parameter-counts.json"
    path.write_text(json.dumps({
        "generator": "scripts/make-reference-fixtures.py",
        "torch": torch.__version__,
        "model": "scripts/reference_densenet.py",
        "counts": counts,
    }, indent=2) + "\n")
    print(f"{path.name}: {len(counts)} configs")


def main() -> None:
    if "--parameter-counts-only" in sys.argv[1:]:
        write_parameter_counts()
        return
    # Fixed thread count: float32 summation order (hence the last bits) depends on it.
    torch.set_num_threads(2)
    start = time.perf_counter()
    for fx in FIXTURES:
        make(fx)
    write_parameter_counts()
    print(f"done in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
