#!/usr/bin/env python3
"""Train the service's embedded default model: a DenseNet-BC on Fashion-MNIST.

The model is scripts/reference_densenet.py's DenseNet (torchvision's module layout and
state_dict names) with the paper's CIFAR stem (3×3 conv, 2k filters), 1 input channel,
28×28 input, 10 classes, bottleneck layers and compression θ = 0.5. The recipe is the
paper's: SGD with Nesterov momentum 0.9 (no dampening), weight decay 1e-4, batch 64,
lr 0.1 divided by 10 at 50% and 75% of the epochs, random crop with 4-px zero padding and
horizontal flip, He init. See training/README.md for commands, timings and outputs.

Outputs: <run-dir>/checkpoint.pt (every epoch, atomically), <run-dir>/log.csv,
<run-dir>/normalization.json; with --export DIR: DIR/weights.safetensors (torchvision
names, F32, num_batches_tracked as I64, metadata `config` = our TypeScript DenseNetConfig
JSON), DIR/normalization.json, DIR/training-log.csv, DIR/labels.txt.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import random
import shutil
import sys
import time
from pathlib import Path

# On CPUs NNPACK does not support, torch logs a warning on every conv; this silences the log
# only (same as scripts/make-reference-fixtures.py).
os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
# Sleep instead of spinning at OpenMP barriers: on a shared 2-core machine at nice 10 the other
# thread is often preempted, and spinning threads burned ~2× the CPU for ~2× the step time in
# our measurements (see README). Must be set before torch loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(HERE))

import fashion_mnist  # noqa: E402
from reference_densenet import DenseNet, DenseNetConfig  # noqa: E402

CHECKPOINT = "checkpoint.pt"
LOG = "log.csv"
LOG_FIELDS = ["epoch", "lr", "train_loss", "train_acc", "test_acc", "seconds"]
NORMALIZATION = "normalization.json"
PAD = 4  # random-crop zero padding, pixels
# Small on purpose: on our CPU a forward pass at batch 500 cost ~20× more per image than at 100.
EVAL_BATCH = 100

# Hyperparameters that define a run; --resume takes them from the checkpoint.
RUN_KEYS = ("depth", "growth", "dropout", "epochs", "batch_size", "lr", "momentum", "weight_decay", "seed",
            "augment", "time_budget", "min_epochs", "limit_train", "schedule", "crop_pad", "init_from")
RESUMABLE_OVERRIDES = ("epochs", "time_budget", "min_epochs")


# ----------------------------------------------------------------------------- model


def make_config(depth: int, growth: int) -> DenseNetConfig:
    if depth < 10 or (depth - 4) % 6:
        raise SystemExit(f"--depth {depth}: DenseNet-BC needs depth = 6n + 4 (n ≥ 1 bottleneck layers per block), e.g. 40, 52, 64, 100")
    n = (depth - 4) // 6
    return DenseNetConfig(
        growth_rate=growth,
        block_layers=(n, n, n),
        bottleneck=True,
        compression=0.5,
        stem="cifar",
        stem_channels=2 * growth,
        input_size=28,
        input_channels=1,
        num_classes=len(fashion_mnist.CLASS_NAMES),
    )


def ts_config(cfg: DenseNetConfig, dropout: float) -> dict:
    """The architecture in the shape of src/densenet/config.ts (camelCase keys)."""
    out = cfg.as_ts_config()
    out["dropRate"] = dropout
    return out


def he_init(model: nn.Module) -> None:
    """As the paper's code (liuzhuang13/DenseNet): conv weights ~ N(0, 2/(k·k·out_channels)),
    BN γ = 1, β = 0, classifier bias 0 (its weight keeps PyTorch's default)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)


def add_dropout(model: DenseNet, p: float) -> None:
    """Dropout on each dense layer's new feature maps (after its last conv), where torchvision
    and our TypeScript model (dropRate) put it. Hooks keep the state_dict names unchanged."""
    if p <= 0:
        return

    def hook(module: nn.Module, _inputs, output: torch.Tensor) -> torch.Tensor:
        return F.dropout(output, p=p, training=module.training)

    for name, module in model.named_modules():
        if name.rsplit(".", 1)[-1].startswith("denselayer"):
            last = module.conv2 if hasattr(module, "conv2") else module.conv1
            last.register_forward_hook(hook)


def build_model(depth: int, growth: int, dropout: float) -> tuple[DenseNet, DenseNetConfig]:
    cfg = make_config(depth, growth)
    model = DenseNet(cfg)
    he_init(model)
    add_dropout(model, dropout)
    return model, cfg


# ----------------------------------------------------------------------------- data


class Data:
    """The whole dataset as uint8 on the device; batches are normalised (and augmented) on the fly."""

    def __init__(self, args: argparse.Namespace, device: torch.device, channels_last: bool):
        t0 = time.perf_counter()
        tr_x, tr_y = fashion_mnist.load_split("train", args.data_dir)
        te_x, te_y = fashion_mnist.load_split("t10k", args.data_dir)
        # Statistics always come from the full training set, whatever --limit-train says.
        self.mean, self.std = fashion_mnist.mean_std(tr_x)
        if args.limit_train:
            tr_x, tr_y = tr_x[: args.limit_train], tr_y[: args.limit_train]
        if args.limit_test:
            te_x, te_y = te_x[: args.limit_test], te_y[: args.limit_test]
        self.device = device
        self.channels_last = channels_last
        self.crop_pad = args.crop_pad
        self.train_x = torch.from_numpy(tr_x.copy()).to(device)
        self.train_y = torch.from_numpy(tr_y).to(device)
        self.test_x = torch.from_numpy(te_x.copy()).to(device)
        self.test_y = torch.from_numpy(te_y).to(device)
        self.load_seconds = time.perf_counter() - t0
        self._ar = torch.arange(28, device=device)

    def normalize(self, x_u8: torch.Tensor) -> torch.Tensor:
        """uint8 [B, 28, 28] (or float in [0, 1], [B, 28, 28]) → normalised float [B, 1, 28, 28]."""
        x = x_u8.float() / 255.0 if x_u8.dtype == torch.uint8 else x_u8
        x = ((x - self.mean) / self.std).unsqueeze(1)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def augment(self, x_u8: torch.Tensor) -> torch.Tensor:
        """Random crop with 4-px zero padding + random horizontal flip, as one gather per batch.

        Padding is applied to the raw image, so padded pixels are 0 = the black background.
        The random draws come from the global CPU generator (its state is checkpointed), so
        the augmentation is the same on CPU and GPU.
        """
        b = x_u8.shape[0]
        pad = self.crop_pad
        offsets = torch.randint(0, 2 * pad + 1, (b, 2)).to(self.device)
        flips = (torch.rand(b) < 0.5).to(self.device)
        padded = F.pad(x_u8.float() / 255.0, (pad, pad, pad, pad))  # [B, 28 + 2·pad, 28 + 2·pad]
        rows = offsets[:, :1] + self._ar  # [B, 28]
        cols = offsets[:, 1:] + self._ar
        cols = torch.where(flips[:, None], cols.flip(1), cols)
        batch = torch.arange(b, device=self.device)[:, None, None]
        return padded[batch, rows[:, :, None], cols[:, None, :]]  # [B, 28, 28]


# ----------------------------------------------------------------------------- progress


def fmt_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class Progress:
    """A small progress bar on stderr. On a terminal it redraws one line; when stderr is a file
    (nohup) it prints a full line every `interval` seconds instead, so logs stay readable."""

    def __init__(self, total: int, desc: str, interval: float, stream=sys.stderr):
        self.total, self.desc, self.interval, self.stream = total, desc, interval, stream
        self.tty = stream.isatty()
        self.start = time.perf_counter()
        self.last = 0.0 if self.tty else self.start

    def update(self, done: int, images: int, loss: float, acc: float, force: bool = False) -> None:
        now = time.perf_counter()
        min_gap = 0.5 if self.tty else self.interval
        if not force and now - self.last < min_gap:
            return
        self.last = now
        elapsed = now - self.start
        rate = images / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) * elapsed / done if done else float("inf")
        width = 24
        filled = int(width * done / self.total)
        bar = "#" * filled + "-" * (width - filled)
        line = (f"{self.desc} [{bar}] {done}/{self.total} loss {loss:.4f} acc {100 * acc:.2f}% "
                f"{rate:.0f} img/s elapsed {fmt_seconds(elapsed)} ETA {fmt_seconds(eta)}")
        if self.tty:
            self.stream.write("\r" + line + "\x1b[K")
            if done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


# ----------------------------------------------------------------------------- train / eval


def lr_at(epoch: int, args, progress: float = 0.0) -> float:
    """step: the paper's schedule, lr/10 from 50% of the epochs, lr/100 from 75%.
    cosine: lr·½(1 + cos(π·t)), t = the fraction of the run done (progress = fraction of this epoch);
    used for a warm restart from a trained model (--init-from)."""
    if args.schedule == "cosine":
        return args.lr * 0.5 * (1 + math.cos(math.pi * (epoch + progress) / args.epochs))
    m1, m2 = milestones(args.epochs)
    return args.lr * (0.1 if epoch >= m1 else 1.0) * (0.1 if epoch >= m2 else 1.0)


def milestones(epochs: int) -> tuple[int, int]:
    return epochs // 2, (3 * epochs) // 4


def fit_epochs(done: int, args, train_seconds: float, epoch_seconds: float) -> int:
    """With --time-budget: the epoch count that ends training near the budget.

    Only called while the lr is still at its initial value (done < first milestone), so changing
    the count only moves the future lr drops and nothing already trained. Bounded by --epochs
    (as first given) above and --min-epochs below, and never so small that the first drop
    would fall before `done`.
    """
    fits = done + int(max(0.0, args.time_budget - train_seconds) // epoch_seconds)
    epochs = max(args.min_epochs, min(args.max_epochs, fits))
    while milestones(epochs)[0] < done:
        epochs += 1
    return epochs


def train_epoch(model, opt, data: Data, epoch: int, args, device) -> tuple[float, float]:
    model.train()
    n = data.train_x.shape[0]
    # The data order depends only on (seed, epoch): resuming reproduces it without saved state.
    gen = torch.Generator().manual_seed(args.seed * 1000 + epoch)
    perm = torch.randperm(n, generator=gen).to(device)
    steps = math.ceil(n / args.batch_size)
    bar = Progress(steps, f"epoch {epoch + 1}/{args.epochs}", args.progress_interval)
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    seen = 0
    for step in range(steps):
        if args.schedule == "cosine":
            for group in opt.param_groups:
                group["lr"] = lr_at(epoch, args, step / steps)
        idx = perm[step * args.batch_size:(step + 1) * args.batch_size]
        xb, yb = data.train_x[idx], data.train_y[idx]
        x = data.normalize(data.augment(xb) if args.augment else xb)
        logits = model(x)
        loss = F.cross_entropy(logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        b = yb.shape[0]
        seen += b
        loss_sum += loss.detach().double() * b
        correct += (logits.detach().argmax(1) == yb).sum()
        last = step + 1 == steps
        if last or bar.tty or time.perf_counter() - bar.last >= args.progress_interval:
            bar.update(step + 1, seen, loss_sum.item() / seen, correct.item() / seen, force=last)
        if not math.isfinite(loss.item() if last or step % 50 == 0 else 0.0):
            raise SystemExit(f"loss is {loss.item()} at epoch {epoch + 1} step {step + 1}; stopping")
    return loss_sum.item() / seen, correct.item() / seen


@torch.no_grad()
def evaluate(model, data: Data) -> tuple[float, float]:
    model.eval()
    n = data.test_x.shape[0]
    loss_sum, correct = 0.0, 0
    for i in range(0, n, EVAL_BATCH):
        x = data.normalize(data.test_x[i:i + EVAL_BATCH])
        y = data.test_y[i:i + EVAL_BATCH]
        logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
    return loss_sum / n, correct / n


# ----------------------------------------------------------------------------- checkpoints


def rng_state(device: torch.device) -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_write(path: Path, write) -> None:
    """write(tmp_path) then rename over path, so a crash never leaves a half-written file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # safetensors writes 0600; these files are meant to be shared
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_checkpoint(run_dir: Path, state: dict) -> None:
    atomic_write(run_dir / CHECKPOINT, lambda p: torch.save(state, p))


def load_checkpoint(run_dir: Path) -> dict:
    path = run_dir / CHECKPOINT
    if not path.is_file():
        raise SystemExit(f"no checkpoint at {path}")
    # Our own file: it holds Python/numpy RNG states, which weights_only=True refuses.
    return torch.load(path, map_location="cpu", weights_only=False)


def read_log(run_dir: Path) -> list[dict]:
    path = run_dir / LOG
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_log(run_dir: Path, rows: list[dict]) -> None:
    def write(p: Path) -> None:
        with open(p, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=LOG_FIELDS)
            w.writeheader()
            w.writerows(rows)

    atomic_write(run_dir / LOG, write)


def normalization_info(mean: float, std: float) -> dict:
    return {
        "mean": [mean],
        "std": [std],
        "formula": "x = (pixel / 255 - mean[c]) / std[c]",
        "inputRange": [0, 1],
        "inputHeight": 28,
        "inputWidth": 28,
        "inputChannels": 1,
        "polarity": "Fashion-MNIST: light garment on a dark (0) background",
        "source": "Fashion-MNIST training set (60,000 images), all pixels",
    }


def write_json(path: Path, obj) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=2) + "\n"))


# ----------------------------------------------------------------------------- export


def export(model: DenseNet, cfg: DenseNetConfig, hp: dict, mean: float, std: float, test_acc: float,
           epochs_done: int, run_dir: Path, out_dir: Path, data: Data) -> None:
    from safetensors.torch import load_file, save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    # .contiguous() also turns channels_last conv kernels back into plain OIHW.
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    for k, v in state.items():
        if v.is_floating_point() and v.dtype != torch.float32:
            state[k] = v.float()
    metadata = {
        "format": "pt",
        "config": json.dumps(ts_config(cfg, hp["dropout"])),
        "mean": json.dumps([mean]),
        "std": json.dumps([std]),
        "testAccuracy": f"{test_acc:.4f}",
        "epochs": str(epochs_done),
        "plannedEpochs": str(hp["epochs"]),
        "seed": str(hp["seed"]),
        "dataset": "fashion-mnist",
        "labels": json.dumps(list(fashion_mnist.CLASS_NAMES)),
        "model": f"DenseNet-BC-{hp['depth']}-k{hp['growth']}",
        "parameters": str(sum(p.numel() for p in model.parameters())),
        "generator": "training/train.py",
        "torch": torch.__version__,
        "exportedAt": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    weights = out_dir / "weights.safetensors"
    atomic_write(weights, lambda p: save_file(state, str(p), metadata=metadata))

    # Self-check: the file loads strictly into a fresh model and gives the same predictions.
    fresh = DenseNet(cfg)
    fresh.load_state_dict(load_file(str(weights)), strict=True)
    fresh.eval()
    model.eval()
    with torch.no_grad():
        x = data.normalize(data.test_x[:256]).to("cpu").contiguous()
        ref = model.to("cpu").float()(x) if data.device.type != "cpu" else model(x)
        got = fresh(x)
    model.to(data.device)
    err = (ref - got).abs().max().item()
    if err > 1e-3 * max(1.0, ref.abs().max().item()):
        raise SystemExit(f"export self-check failed: reloaded logits differ by {err:.3g}")

    write_json(out_dir / NORMALIZATION, normalization_info(mean, std))
    atomic_write(out_dir / "labels.txt", lambda p: p.write_text("\n".join(fashion_mnist.CLASS_NAMES) + "\n"))
    log = run_dir / LOG
    if log.is_file():
        atomic_write(out_dir / "training-log.csv", lambda p: shutil.copyfile(log, p))
    print(f"exported {weights} ({weights.stat().st_size:,} bytes, test accuracy {100 * test_acc:.2f}%, "
          f"{epochs_done} epochs; reload check max |Δlogit| {err:.2g})", flush=True)


# ----------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("model")
    g.add_argument("--depth", type=int, default=40, help="DenseNet-BC depth L = 6n + 4 (n bottleneck layers per block)")
    g.add_argument("--growth", type=int, default=12, help="growth rate k")
    g.add_argument("--dropout", type=float, default=0.0,
                   help="dropout on each dense layer's new features (the paper uses 0.2 only without augmentation)")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=15, help="lr/10 at 50%% and 75%% of this")
    g.add_argument("--batch-size", type=int, default=64)
    g.add_argument("--lr", type=float, default=0.1)
    g.add_argument("--momentum", type=float, default=0.9)
    g.add_argument("--weight-decay", type=float, default=1e-4)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--schedule", choices=("step", "cosine"), default="step",
                   help="step: the paper's lr/10 at 50%% and 75%%; cosine: per-step cosine decay to 0")
    g.add_argument("--crop-pad", type=int, default=PAD, help="random-crop zero padding in pixels")
    g.add_argument("--init-from", type=str, default=None, metavar="CHECKPOINT",
                   help="start from another run's checkpoint.pt weights (fresh optimizer and schedule): "
                        "a warm restart; the model options must match that run's")
    g.add_argument("--no-augment", dest="augment", action="store_false", help="turn off the random crop / flip (augment: %(default)s)")
    g.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="fit the schedule to this many seconds of training (evaluation included): after each "
                        "epoch at the initial lr, --epochs is lowered to what fits (never below --min-epochs); "
                        "fixed once the lr first drops")
    g.add_argument("--min-epochs", type=int, default=4, help="lower bound for --time-budget")
    g.add_argument("--max-train-seconds", type=float, default=None,
                   help="stop at an epoch boundary when the next epoch would end past this many seconds of "
                        "this invocation (checkpoint kept; --resume continues)")
    g = p.add_argument_group("run")
    g.add_argument("--run-dir", type=Path, default=HERE / "runs" / "fmnist")
    g.add_argument("--resume", action="store_true", help="continue from <run-dir>/checkpoint.pt")
    g.add_argument("--export", type=Path, default=None, metavar="DIR", help="write the model to DIR after training")
    g.add_argument("--export-only", action="store_true", help="load <run-dir>/checkpoint.pt, evaluate and --export")
    g.add_argument("--device", default="cpu", help="cpu or cuda")
    g.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    g.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                   help="NCHW instead of channels_last (channels_last is ~30%% faster on our CPU)")
    g.add_argument("--data-dir", type=Path, default=fashion_mnist.DEFAULT_DIR)
    g.add_argument("--progress-interval", type=float, default=30.0,
                   help="seconds between progress lines when stderr is not a terminal")
    g.add_argument("--limit-train", type=int, default=0, help=argparse.SUPPRESS)  # smoke tests
    g.add_argument("--limit-test", type=int, default=0, help=argparse.SUPPRESS)
    return p


def parse_args(argv=None) -> tuple[argparse.Namespace, set[str]]:
    """The options, and the names of those given explicitly on the command line."""
    args = build_parser().parse_args(argv)
    bare = build_parser()
    for action in bare._actions:
        action.default = argparse.SUPPRESS
    return args, set(vars(bare.parse_args(argv)))


def main(argv=None) -> None:
    args, explicit = parse_args(argv)
    t_start = time.perf_counter()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device available to this torch")
    torch.set_num_threads(args.threads)
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # denormals make CPU convs crawl; they do not matter here
    run_dir: Path = args.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)

    ckpt = None
    if args.resume or args.export_only:
        ckpt = load_checkpoint(run_dir)
        saved = ckpt["hparams"]
        # The run's hyperparameters come from the checkpoint. Only the schedule's length and its
        # budget knobs may be changed on resume (they only move lr drops that have not happened yet).
        ignored = {k: getattr(args, k) for k in RUN_KEYS
                   if k not in RESUMABLE_OVERRIDES and k in explicit and getattr(args, k) != saved[k]}
        for k in RUN_KEYS:
            if k not in RESUMABLE_OVERRIDES or k not in explicit:
                # Checkpoints from before an option existed ran with its default.
                setattr(args, k, saved.get(k, build_parser().get_default(k)))
            elif getattr(args, k) != saved.get(k):
                print(f"note: --{k.replace('_', '-')} {getattr(args, k)} replaces the checkpoint's {saved.get(k)}", flush=True)
        if args.epochs != saved["epochs"]:
            print(f"note: lr milestones are now {milestones(args.epochs)}", flush=True)
        if ignored:
            print(f"note: resuming with the checkpoint's hyperparameters, ignoring {ignored}", flush=True)
    elif (run_dir / CHECKPOINT).exists():
        raise SystemExit(f"{run_dir / CHECKPOINT} exists: pass --resume to continue it, or pick another --run-dir")
    # --time-budget shrinks args.epochs; the first value given stays the upper bound.
    args.max_epochs = ckpt["max_epochs"] if ckpt is not None and "epochs" not in explicit else args.epochs
    hp = {k: getattr(args, k) for k in RUN_KEYS}

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True

    data = Data(args, device, args.channels_last)
    print(f"Fashion-MNIST: {data.train_x.shape[0]} train / {data.test_x.shape[0]} test images "
          f"(loaded in {data.load_seconds:.1f}s); training-set mean {data.mean:.6f} std {data.std:.6f}", flush=True)
    if ckpt is not None and (abs(ckpt["mean"] - data.mean) > 1e-9 or abs(ckpt["std"] - data.std) > 1e-9):
        raise SystemExit("the checkpoint's mean/std differ from this dataset's")
    write_json(run_dir / NORMALIZATION, normalization_info(data.mean, data.std))

    model, cfg = build_model(args.depth, args.growth, args.dropout)
    params = sum(p.numel() for p in model.parameters())
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum, dampening=0,
                          nesterov=True, weight_decay=args.weight_decay)

    start_epoch, best_acc, best_epoch, test_acc, train_seconds = 0, 0.0, 0, float("nan"), 0.0
    if ckpt is None and args.init_from:
        source = torch.load(args.init_from, map_location="cpu", weights_only=False)
        model.load_state_dict(source["model"])  # strict: a different depth/growth fails here
        print(f"initialised from {args.init_from}: {source['epoch']} epochs of "
              f"{source['hparams'].get('schedule', 'step')} schedule, test accuracy {100 * source['test_acc']:.2f}%",
              flush=True)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        start_epoch, best_acc, best_epoch = ckpt["epoch"], ckpt["best_acc"], ckpt["best_epoch"]
        test_acc, train_seconds = ckpt["test_acc"], ckpt["train_seconds"]
        set_rng_state(ckpt["rng"], device)
        print(f"resumed {run_dir / CHECKPOINT}: {start_epoch} epochs done, test accuracy {100 * test_acc:.2f}%, "
              f"best {100 * best_acc:.2f}% (epoch {best_epoch})", flush=True)
    # Drop log lines of epochs the checkpoint does not have (a crash between the two writes).
    log_rows = [r for r in read_log(run_dir) if int(r["epoch"]) <= start_epoch]
    write_log(run_dir, log_rows)

    print(f"model DenseNet-BC-{args.depth}-k{args.growth}: blocks {list(cfg.block_layers)}, {params:,} parameters, "
          f"dropout {args.dropout}; device {device}, {args.threads} threads, "
          f"{'channels_last' if args.channels_last else 'NCHW'}", flush=True)
    shape = (f"cosine to 0" if args.schedule == "cosine" else
             f"→ /10 at epoch {milestones(args.epochs)[0] + 1} → /100 at epoch {milestones(args.epochs)[1] + 1}")
    print(f"schedule: {args.epochs} epochs, batch {args.batch_size}, lr {args.lr} {shape}; "
          f"SGD Nesterov {args.momentum}, wd {args.weight_decay}, seed {args.seed}, "
          f"augment {f'crop±{args.crop_pad}+flip' if args.augment else 'off'}", flush=True)

    epochs_done = start_epoch
    epoch_times: list[float] = []
    while not args.export_only and epochs_done < args.epochs:
        epoch = epochs_done  # 0-based index of the epoch about to run
        elapsed = time.perf_counter() - t_start
        if args.max_train_seconds and epoch_times and elapsed + np.mean(epoch_times) > args.max_train_seconds:
            print(f"stopping before epoch {epoch + 1}: {elapsed:.0f}s used, an epoch takes ~{np.mean(epoch_times):.0f}s, "
                  f"limit {args.max_train_seconds:.0f}s; --resume continues", flush=True)
            break
        t0 = time.perf_counter()
        lr = lr_at(epoch, args)
        for group in opt.param_groups:
            group["lr"] = lr
        train_loss, train_acc = train_epoch(model, opt, data, epoch, args, device)
        _, test_acc = evaluate(model, data)
        seconds = time.perf_counter() - t0
        epoch_times.append(seconds)
        train_seconds += seconds
        epochs_done = epoch + 1
        if test_acc > best_acc:
            best_acc, best_epoch = test_acc, epochs_done
        recent = float(np.mean(epoch_times[-3:]))
        if args.time_budget and epochs_done < milestones(args.epochs)[0]:
            planned = fit_epochs(epochs_done, args, train_seconds, recent)
            if planned != args.epochs:
                args.epochs = hp["epochs"] = planned
                m1, m2 = milestones(planned)
                print(f"time budget {args.time_budget:.0f}s: plan is now {planned} epochs (~{recent:.0f}s each, "
                      f"{train_seconds:.0f}s used); lr /10 from epoch {m1 + 1}, /100 from epoch {m2 + 1}", flush=True)
        save_checkpoint(run_dir, {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "epoch": epochs_done,
            "best_acc": best_acc,
            "best_epoch": best_epoch,
            "test_acc": test_acc,
            "train_seconds": train_seconds,
            "hparams": hp,
            "max_epochs": args.max_epochs,
            "mean": data.mean,
            "std": data.std,
            "config": ts_config(cfg, args.dropout),
            "rng": rng_state(device),
            "torch": torch.__version__,
        })
        log_rows.append({"epoch": epochs_done, "lr": f"{lr:g}", "train_loss": f"{train_loss:.5f}",
                         "train_acc": f"{train_acc:.5f}", "test_acc": f"{test_acc:.5f}", "seconds": f"{seconds:.1f}"})
        write_log(run_dir, log_rows)
        remaining = (args.epochs - epochs_done) * recent
        finish = dt.datetime.now() + dt.timedelta(seconds=remaining)
        print(f"epoch {epochs_done}/{args.epochs} lr {lr:g}: train loss {train_loss:.4f} acc {100 * train_acc:.2f}% | "
              f"test acc {100 * test_acc:.2f}% (best {100 * best_acc:.2f}% @ {best_epoch}) | {seconds:.0f}s | "
              f"run ETA {fmt_seconds(remaining)} (~{finish:%H:%M})", flush=True)

    if args.export is not None:
        if epochs_done == 0:
            raise SystemExit("nothing trained yet; nothing to export")
        if args.export_only or not math.isfinite(test_acc):
            _, test_acc = evaluate(model, data)
        if epochs_done < args.epochs:
            print(f"warning: exporting after {epochs_done} of {args.epochs} planned epochs", flush=True)
        export(model, cfg, hp, data.mean, data.std, test_acc, epochs_done, run_dir, args.export, data)
    print(f"done in {fmt_seconds(time.perf_counter() - t_start)}; final test accuracy {100 * test_acc:.2f}%", flush=True)


if __name__ == "__main__":
    main()
