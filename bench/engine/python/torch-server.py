#!/usr/bin/env python3
"""PyTorch eager engine for the engine bench: a long-lived child of bench/engine.ts.

The model is scripts/reference_densenet.py's DenseNet: torchvision's module layout and the
same forward (each dense layer concatenates every earlier feature map), since the torchvision
wheel on our index does not import next to the pinned torch. It runs the way TorchServe's
default handler runs a model: eval(), torch.inference_mode(), torch.set_num_threads(cores).

Wire protocol on stdin/stdout, both ways the same frame:
    u32 LE header length, header (UTF-8 JSON), u32 LE payload length, payload bytes
Requests:
    {"op": "load", "config": {...TS DenseNetConfig}, "weights": path, "threads": n,
     "format": "auto" | "channels_last" | "contiguous", "probeBatch": n}
        -> {"ok": true, "format": chosen, "probeMs": {...}, "torch": version, "threads": n}
    {"op": "run", "n": n}, payload float32 NHWC [n, H, W, C]
        -> {"ok": true, "ms": in-process time}, payload float32 logits [n, classes]
    {"op": "quit"}
Errors answer {"ok": false, "error": message}. "ms" runs from the received bytes to the
logits' bytes (tensor view, forward, copy out): PyTorch's own time without the pipe.
"""
from __future__ import annotations

import json
import os
import struct
import sys
import time
from pathlib import Path

os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")  # NNPACK warnings on unsupported CPUs

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))
from reference_densenet import DenseNet, DenseNetConfig  # noqa: E402

# The protocol owns stdout: anything else printed goes to stderr.
PIPE_OUT = sys.stdout.buffer
PIPE_IN = sys.stdin.buffer
sys.stdout = sys.stderr


def read_exact(n: int) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = PIPE_IN.readinto(view[got:])
        if not k:
            raise EOFError
        got += k
    return buf


def read_frame() -> tuple[dict, bytearray]:
    (hlen,) = struct.unpack("<I", read_exact(4))
    header = json.loads(read_exact(hlen).decode())
    (plen,) = struct.unpack("<I", read_exact(4))
    return header, read_exact(plen) if plen else bytearray()


def write_frame(header: dict, payload: bytes = b"") -> None:
    h = json.dumps(header).encode()
    PIPE_OUT.write(struct.pack("<I", len(h)) + h + struct.pack("<I", len(payload)))
    if payload:
        PIPE_OUT.write(payload)
    PIPE_OUT.flush()


class Engine:
    def __init__(self, req: dict):
        c = req["config"]
        self.shape = (c["inputHeight"], c["inputWidth"], c["inputChannels"])
        cfg = DenseNetConfig(
            growth_rate=c["growthRate"], block_layers=tuple(c["blockLayers"]), bottleneck=c["bottleneck"],
            compression=c["compression"], stem=c["stem"], stem_channels=c["stemChannels"],
            input_size=c["inputHeight"], input_channels=c["inputChannels"], num_classes=c["numClasses"],
            bn_size=c["bottleneckWidth"], bn_eps=c["bnEpsilon"],
        )
        torch.set_num_threads(int(req["threads"]))
        model = DenseNet(cfg)
        model.load_state_dict(load_file(req["weights"]), strict=True)
        self.model = model.eval()
        self.probe_ms: dict[str, float] = {}
        fmt = req.get("format", "auto")
        if fmt == "auto":
            fmt = self.probe(int(req.get("probeBatch", 8)))
        self.use(fmt)

    def use(self, fmt: str) -> None:
        if fmt not in ("channels_last", "contiguous"):
            raise ValueError(f"unknown memory format {fmt!r}")
        self.format = fmt
        self.model = self.model.to(memory_format=torch.channels_last if fmt == "channels_last" else torch.contiguous_format)

    def probe(self, n: int) -> str:
        """Picks the faster memory format: the best of 3 runs each after one warm-up."""
        x = bytearray(torch.randn(n, *self.shape).numpy().tobytes())
        for fmt in ("channels_last", "contiguous"):
            self.use(fmt)
            self.run(n, x)
            self.probe_ms[fmt] = min(self.run(n, x)[1] for _ in range(3))
        return min(self.probe_ms, key=self.probe_ms.__getitem__)

    def run(self, n: int, payload: bytearray) -> tuple[bytes, float]:
        start = time.perf_counter()
        # NHWC bytes viewed as NCHW: already channels_last strides, no copy.
        x = torch.frombuffer(payload, dtype=torch.float32).view(n, *self.shape).permute(0, 3, 1, 2)
        if self.format == "contiguous":
            x = x.contiguous()
        with torch.inference_mode():
            out = self.model(x).contiguous().numpy().tobytes()
        return out, (time.perf_counter() - start) * 1000


def main() -> None:
    engine: Engine | None = None
    while True:
        try:
            req, payload = read_frame()
        except EOFError:
            return
        try:
            if req["op"] == "quit":
                return
            if req["op"] == "load":
                engine = Engine(req)
                write_frame({"ok": True, "format": engine.format, "probeMs": engine.probe_ms,
                             "torch": torch.__version__, "threads": torch.get_num_threads()})
            elif req["op"] == "run":
                if engine is None:
                    raise RuntimeError("run before load")
                out, ms = engine.run(int(req["n"]), payload)
                write_frame({"ok": True, "ms": ms}, out)
            else:
                raise ValueError(f"unknown op {req['op']!r}")
        except Exception as err:  # noqa: BLE001 - every failure goes back to the bench
            write_frame({"ok": False, "error": f"{type(err).__name__}: {err}"})


if __name__ == "__main__":
    main()
