#!/usr/bin/env python3
"""A TensorFlow SavedModel of a DenseNet, from torchvision-named safetensors weights.

The tf-savedmodel candidate of the engine bench (bench/engine.ts) loads this with tfjs-node's
tf.node.loadSavedModel, i.e. the same libtensorflow as our engine but running a TF graph
instead of tfjs-layers' op-by-op execution. The graph is what a Keras DenseNet lowers to,
written with raw TF ops in a tf.Module so it depends on nothing but TensorFlow:

  NHWC float32, Conv2D (HWIO kernels; explicit zero padding + VALID for the strided stem,
  like Keras' reference DenseNet; SAME for 3×3/1), FusedBatchNormV3 (inference; called as a
  raw op because tf.nn.fused_batch_norm raises epsilon to 1.001e-5), Relu, MaxPool, AvgPool,
  ConcatV2, Mean, MatMul + BiasAdd. Weights are variables, restored when the model loads.

Signature 'serving_default': input 'input' [None, H, W, C] -> output 'logits' [None, classes].

    python make-saved-model.py --config '<DenseNetConfig JSON>' --weights w.safetensors --out dir

Needs tensorflow-cpu (2.21.0, as the engine), safetensors and numpy: the bench documents a
virtual environment for them (bench/engine/README.md).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Same engine settings as the service (src/densenet/tf-runtime.ts): oneDNN off.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402


class DenseNet(tf.Module):
    def __init__(self, cfg: dict, state: dict[str, np.ndarray]):
        super().__init__(name="densenet")
        self.cfg = cfg
        self.eps = float(cfg["bnEpsilon"])
        self.vars: dict[str, tf.Variable] = {}
        self.used: set[str] = set()
        for key, value in state.items():
            if key.endswith("num_batches_tracked"):
                continue
            if value.ndim == 4:  # conv OIHW -> HWIO
                value = value.transpose(2, 3, 1, 0)
            elif value.ndim == 2:  # linear [out, in] -> [in, out]
                value = value.T
            self.vars[key] = tf.Variable(np.ascontiguousarray(value, dtype=np.float32), trainable=False,
                                         name=key.replace(".", "/"))
        h, w, c = cfg["inputHeight"], cfg["inputWidth"], cfg["inputChannels"]
        self.serve = tf.function(self.forward, input_signature=[tf.TensorSpec([None, h, w, c], tf.float32, name="input")])

    def v(self, key: str) -> tf.Variable:
        self.used.add(key)
        return self.vars[key]

    def conv(self, x, name: str, kernel: int, stride: int = 1):
        pad = (kernel - 1) // 2
        if stride == 1 and kernel % 2 == 1:
            return tf.nn.conv2d(x, self.v(f"{name}.weight"), 1, "SAME")
        if pad:
            x = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
        return tf.nn.conv2d(x, self.v(f"{name}.weight"), stride, "VALID")

    def bn_relu(self, x, name: str):
        y, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=self.v(f"{name}.weight"), offset=self.v(f"{name}.bias"),
            mean=self.v(f"{name}.running_mean"), variance=self.v(f"{name}.running_var"),
            epsilon=self.eps, data_format="NHWC", is_training=False)
        return tf.nn.relu(y)

    def forward(self, x):
        cfg = self.cfg
        if cfg["stem"] == "imagenet":
            x = self.bn_relu(self.conv(x, "features.conv0", 7, 2), "features.norm0")
            x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])  # post-ReLU: zeros act as -inf
            x = tf.nn.max_pool2d(x, 3, 2, "VALID")
        else:
            x = self.conv(x, "features.conv0", 3)
        blocks = cfg["blockLayers"]
        for b, layers in enumerate(blocks, start=1):
            for i in range(1, layers + 1):
                name = f"features.denseblock{b}.denselayer{i}"
                if cfg["bottleneck"]:
                    y = self.conv(self.bn_relu(x, f"{name}.norm1"), f"{name}.conv1", 1)
                    y = self.conv(self.bn_relu(y, f"{name}.norm2"), f"{name}.conv2", 3)
                else:
                    y = self.conv(self.bn_relu(x, f"{name}.norm1"), f"{name}.conv1", 3)
                x = tf.concat([x, y], axis=-1)
            if b < len(blocks):
                name = f"features.transition{b}"
                x = self.conv(self.bn_relu(x, f"{name}.norm"), f"{name}.conv", 1)
                x = tf.nn.avg_pool2d(x, 2, 2, "VALID")
        x = tf.reduce_mean(self.bn_relu(x, "features.norm5"), axis=[1, 2])
        logits = tf.nn.bias_add(tf.matmul(x, self.v("classifier.weight")), self.v("classifier.bias"))
        return {"logits": logits}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    cfg = json.loads(args.config)
    module = DenseNet(cfg, load_file(str(args.weights)))
    concrete = module.serve.get_concrete_function()  # traces once: marks the weights it reads
    unused = sorted(set(module.vars) - module.used)
    if unused:
        raise SystemExit(f"make-saved-model: weights the graph does not use: {unused[:8]}")
    tmp = args.out.with_name(args.out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tf.saved_model.save(module, str(tmp), signatures={"serving_default": concrete})
    shutil.rmtree(args.out, ignore_errors=True)
    tmp.rename(args.out)
    print(f"make-saved-model: TF {tf.__version__}, {len(module.vars)} variables -> {args.out}")


if __name__ == "__main__":
    main()
