"""What both Python peers share: the ONNX session and torchvision-style preprocessing.

Each peer is a server people would write in Python around the ONNX file our server runs
(bench/peers/make-onnx.ts: same network, same weights, NHWC input). Preprocessing follows the
model repository's manifest.json (the recipe our server applies) the torchvision way: PIL
decode, Resize(shorter side, bilinear), CenterCrop, ToTensor, Normalize.
"""
from __future__ import annotations

import io
import json

import numpy as np
import onnxruntime as ort
from PIL import Image


class Classifier:
    def __init__(self, onnx_path: str, manifest_path: str, threads: int) -> None:
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
        self.labels: list[str] = manifest["labels"]
        pre = manifest.get("preprocessing", {})
        if pre.get("resizeMode", "resize-crop") != "resize-crop":
            raise ValueError(f"only resize-crop preprocessing is implemented, not {pre['resizeMode']}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        first = self.session.get_inputs()[0]
        self.input_name = first.name
        _, self.height, self.width, self.channels = first.shape  # NHWC, batch symbolic
        self.shorter = int(pre.get("resizeShorterTo") or max(self.height, self.width))
        self.mean = np.asarray(pre.get("mean", [0.0]), dtype=np.float32)
        self.std = np.asarray(pre.get("std", [1.0]), dtype=np.float32)

    def preprocess(self, data: bytes) -> np.ndarray:
        """Encoded image -> (H, W, C) float32, normalised."""
        image = Image.open(io.BytesIO(data))
        image = image.convert("RGB" if self.channels == 3 else "L")
        w, h = image.size
        # torchvision.transforms.Resize(int): the shorter side becomes `shorter`, the other int().
        if w <= h:
            size = (self.shorter, int(self.shorter * h / w))
        else:
            size = (int(self.shorter * w / h), self.shorter)
        image = image.resize(size, Image.BILINEAR)
        # torchvision.transforms.CenterCrop
        left = int(round((size[0] - self.width) / 2.0))
        top = int(round((size[1] - self.height) / 2.0))
        image = image.crop((left, top, left + self.width, top + self.height))
        x = np.asarray(image, dtype=np.float32) / 255.0
        if x.ndim == 2:
            x = x[:, :, None]
        return (x - self.mean) / self.std

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, C) float32 -> (N, classes) logits."""
        return self.session.run(None, {self.input_name: batch.astype(np.float32, copy=False)})[0]

    def top_k(self, logits: np.ndarray, k: int = 5) -> list[dict]:
        z = logits - logits.max()
        p = np.exp(z)
        p /= p.sum()
        order = np.argsort(-p, kind="stable")[:k]
        return [{"label": self.labels[i], "index": int(i), "score": float(p[i])} for i in order]
