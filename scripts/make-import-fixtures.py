#!/usr/bin/env python3
"""Make the import fixtures in test/fixtures/import/ with the real frameworks (issue 18).

The importer reads files people already have: torch.save checkpoints (.pth, both the zip and
the legacy format) and Keras files (.keras, .h5, .weights.h5). These fixtures are written by
PyTorch and Keras themselves, with the framework's own logits for a fixed input next to each,
so the tests compare the service's logits with the framework's, not with our own reading.

Two frameworks, two Pythons (they do not install side by side here):

  # PyTorch 1.13 + torchvision 0.14 from Debian (pip's torchvision does not import next to
  # pip's torch 2.13):  apt-get install python3-torch python3-torchvision
  /usr/bin/python3 scripts/make-import-fixtures.py pytorch

  # Keras 3 on TensorFlow 2.21 from the local pip index, in a venv:
  python3 -m venv ~/.cache/densenet-serve/keras-venv
  ~/.cache/densenet-serve/keras-venv/bin/pip install --index-url file:///opt/pypi/simple \
      --extra-index-url file:///opt/pypi-more/simple --find-links /opt/wheels \
      tensorflow-cpu==2.21.0 keras h5py
  ~/.cache/densenet-serve/keras-venv/bin/python scripts/make-import-fixtures.py keras

`--full DIR` writes full-size DenseNet-121 files (random weights) into DIR instead, for
scripts/check-import-densenet121.ts (`npm run check:import`); they are never committed.

Every `<stem>.io.safetensors` holds `input` (float32 NHWC, what our engine takes) and `logits`
(float32 [N, classes], computed by the framework in float32 from the weights as stored), with
the architecture (JSON for src/densenet/config.ts) and versions in its metadata.

Hostile files (hostile/) are made by the framework too where it can make them: torch.save of a
state dict holding an object whose unpickling runs os.system / eval / subprocess.Popen. Each is
checked here to have its side effect (a marker file appears) when loaded by torch.load without
weights_only, so a test that loads it with our reader and finds no marker proves our reader
refused it before running anything.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "test" / "fixtures" / "import"
SEED = 18
# Marker files a hostile fixture creates when something unpickles it the unsafe way.
MARKER_DIR = "/tmp"


def marker(kind: str) -> str:
    return f"{MARKER_DIR}/densenet-serve-pickle-ran-{kind}"


# --------------------------------------------------------------------------------------------
# A minimal safetensors writer (Debian has no python3-safetensors; the format is 20 lines).

def write_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    dtypes = {np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("int64"): "I64"}
    header: dict[str, object] = {"__metadata__": metadata}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        data = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtypes[arr.dtype], "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def fixed_input(batch: int, size: int) -> np.ndarray:
    """Shaped like normalised images: NHWC float32."""
    rng = np.random.RandomState(SEED)
    return rng.uniform(-2.0, 2.0, size=(batch, size, size, 3)).astype(np.float32)


def tiny_config(k: int, blocks: list[int], stem: int, width: int, size: int, classes: int, eps: float) -> dict:
    return {
        "growthRate": k, "blockLayers": blocks, "bottleneck": True, "bottleneckWidth": width, "compression": 0.5,
        "stem": "imagenet", "stemChannels": stem, "inputHeight": size, "inputWidth": size, "inputChannels": 3,
        "numClasses": classes, "bnEpsilon": eps,
    }


# --------------------------------------------------------------------------------------------
# PyTorch

class _RunOnLoad:
    """Pickles as a call of `func(*args)`: what a malicious checkpoint does on torch.load."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _torch_model(torch, torchvision, k, blocks, stem, width, classes):
    from torchvision.models.densenet import DenseNet

    torch.manual_seed(SEED)
    model = DenseNet(growth_rate=k, block_config=tuple(blocks), num_init_features=stem, bn_size=width,
                     drop_rate=0, num_classes=classes)
    # Realistic BatchNorm state: default init has mean 0 / var 1 / gamma 1 / beta 0, which would
    # hide a swapped or ignored statistic.
    g = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
                m.running_mean.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.num_batches_tracked.fill_(7)
        model.classifier.bias.copy_(torch.rand(classes, generator=g) - 0.5)
    return model.eval()


def _torch_logits(torch, model, x_nhwc: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x_nhwc).permute(0, 3, 1, 2).contiguous()).numpy().astype(np.float32)


def _legacy_keys(state):
    """Pre-0.4 torchvision names (`norm.1`, `conv.2`), as in torchvision's published weights."""
    import re

    out = OrderedDict()
    for key, value in state.items():
        out[re.sub(r"(denselayer\d+)\.(norm|relu|conv)([12])\.", r"\1.\2.\3.", key)] = value
    return out


def _shared_and_strided(torch, state):
    """Tensors as views: norm0's weight and bias in one storage (offset), classifier.weight
    transposed in memory (non-contiguous strides). torch.save keeps both as they are."""
    out = OrderedDict(state)
    w, b = state["features.norm0.weight"], state["features.norm0.bias"]
    flat = torch.cat([w, b])
    out["features.norm0.weight"] = flat[: w.numel()]
    out["features.norm0.bias"] = flat[w.numel():]
    out["classifier.weight"] = state["classifier.weight"].t().contiguous().t()
    assert not out["classifier.weight"].is_contiguous()
    return out


def _round_model(torch, model, dtype):
    with torch.no_grad():
        for t in list(model.parameters()) + [b for n, b in model.named_buffers() if not n.endswith("num_batches_tracked")]:
            t.copy_(t.to(dtype).to(torch.float32))


def _check_side_effect(path: Path, kind: str) -> None:
    """torch.load without weights_only runs the payload: the marker must appear."""
    m = Path(marker(kind))
    m.unlink(missing_ok=True)
    code = "import sys, torch; torch.load(sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, str(path)], check=False, capture_output=True, timeout=300)
    for _ in range(50):  # Popen touches the file asynchronously
        if m.exists():
            break
        time.sleep(0.1)
    if not m.exists():
        raise SystemExit(f"{path.name}: torch.load did not create {m}; the fixture would prove nothing")
    m.unlink()


def _zip_entries(path: Path) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(path) as z:
        return [(info, z.read(info)) for info in z.infolist()]


def _write_zip(path: Path, entries, compress=zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", compression=compress) as z:
        for info, data in entries:
            z.writestr(info.filename, data)


def _patch_uncompressed_size(path: Path, entry: str, size: int) -> None:
    """Rewrites an entry's declared uncompressed size in its local header and the central
    directory (a zip bomb lies about it, or declares a size no reader should allocate)."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(entry)
    # Local file header: signature, ..., uncompressed size at +22.
    assert raw[info.header_offset:info.header_offset + 4] == b"PK\x03\x04"
    struct.pack_into("<I", raw, info.header_offset + 22, size)
    # Central directory record: uncompressed size at +24; find it by its local-header offset.
    at = raw.find(b"PK\x01\x02")
    while at >= 0:
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", raw, at + 28)
        offset = struct.unpack_from("<I", raw, at + 42)[0]
        if offset == info.header_offset:
            struct.pack_into("<I", raw, at + 24, size)
            break
        at = raw.find(b"PK\x01\x02", at + 46 + name_len + extra_len + comment_len)
    path.write_bytes(bytes(raw))


def make_pytorch(out: Path, full: bool) -> None:
    import torch
    import torchvision

    versions = {"generator": "scripts/make-import-fixtures.py", "torch": torch.__version__, "torchvision": torchvision.__version__}
    if full:
        k, blocks, stem, width, classes, size, batch = 32, [6, 12, 24, 16], 64, 4, 1000, 224, 1
    else:
        # Tiny, with torchvision's own DenseNet class (ImageNet stem, as torchvision always has).
        k, blocks, stem, width, classes, size, batch = 4, [2, 2], 8, 2, 3, 32, 2
    config = tiny_config(k, blocks, stem, width, size, classes, 1e-5)
    model = _torch_model(torch, torchvision, k, blocks, stem, width, classes)
    x = fixed_input(batch, size)
    meta = {**versions, "config": json.dumps(config), "seed": str(SEED)}
    out.mkdir(parents=True, exist_ok=True)
    stem_name = "densenet121" if full else "tiny"
    state = model.state_dict()

    def io_file(name: str, logits: np.ndarray, note: str) -> None:
        write_safetensors(out / f"{name}.io.safetensors", {"input": x, "logits": logits}, {**meta, "note": note})

    # 1. The zip format (torch >= 1.6 default): a plain state_dict.
    torch.save(state, out / f"{stem_name}.zip.pth")
    io_file(f"{stem_name}.zip", _torch_logits(torch, model, x), "torch.save(model.state_dict()), zip format, F32")
    # 2. The legacy format, with torchvision's pre-0.4 key names (like its published weights);
    #    in the tiny file also tensors that share a storage and a non-contiguous one.
    legacy = _legacy_keys(state if full else _shared_and_strided(torch, state))
    torch.save(legacy, out / f"{stem_name}.legacy.pth", _use_new_zipfile_serialization=False)
    io_file(f"{stem_name}.legacy", _torch_logits(torch, model, x),
            "legacy torch.save format (_use_new_zipfile_serialization=False), norm.1-style keys" +
            ("" if full else ", norm0 weight/bias views of one storage, classifier.weight transposed in memory"))
    if full:
        return

    # 3. A training checkpoint: {"model": DataParallel state in F16, epoch, optimizer}, zip.
    import copy

    half = copy.deepcopy(model)
    _round_model(torch, half, torch.float16)
    wrapped = {
        "epoch": 7,
        "model": OrderedDict(("module." + key, v.half() if v.is_floating_point() else v) for key, v in state.items()),
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "nesterov": True, "params": [0, 1, 2]}]},
        "best_acc1": 0.25,
    }
    torch.save(wrapped, out / "tiny.wrapped-f16.pth")
    io_file("tiny.wrapped-f16", _torch_logits(torch, half, x),
            "{'model': module.-prefixed F16 state_dict, 'epoch', 'optimizer', 'best_acc1'}, zip format; logits from the F16-rounded weights")
    # 4. {"state_dict": BF16} in the legacy format.
    bf16 = copy.deepcopy(model)
    _round_model(torch, bf16, torch.bfloat16)
    torch.save({"state_dict": OrderedDict((key, v.bfloat16() if v.is_floating_point() else v) for key, v in state.items())},
               out / "tiny.state-dict-bf16.legacy.pth", _use_new_zipfile_serialization=False)
    io_file("tiny.state-dict-bf16.legacy", _torch_logits(torch, bf16, x),
            "{'state_dict': BF16 state_dict}, legacy format; logits from the BF16-rounded weights")

    make_hostile_pytorch(torch, model, state, out / "hostile")


def make_hostile_pytorch(torch, model, state, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.pth"):
        old.unlink()

    # Made by torch.save: each runs its payload under torch.load(weights_only=False).
    evil_state = OrderedDict(state)
    evil_state["features.norm0.bias"] = _RunOnLoad(os.system, (f"touch {marker('os-system')}",))
    torch.save(evil_state, out / "os-system.pth")  # pickles as posix.system on Linux
    _check_side_effect(out / "os-system.pth", "os-system")

    import builtins

    torch.save({"state_dict": state, "note": _RunOnLoad(builtins.eval, (f"open('{marker('eval')}', 'w').write('ran')",))},
               out / "builtins-eval.legacy.pth", _use_new_zipfile_serialization=False)
    _check_side_effect(out / "builtins-eval.legacy.pth", "eval")

    torch.save({"model": state, "hook": _RunOnLoad(subprocess.Popen, (["touch", marker("popen")],))},
               out / "subprocess-popen.pth", pickle_protocol=4)  # protocol 4: STACK_GLOBAL opcodes
    _check_side_effect(out / "subprocess-popen.pth", "popen")

    # torch.save(model) pickles the module classes: no code of ours should build them.
    torch.save(model, out / "whole-model.pth")

    # Hand-written protocol-0 INST opcode (module and name inline; calls os.system).
    inst = f"(S'touch {marker('inst')}'\nios\nsystem\n.".encode()
    with zipfile.ZipFile(out / "inst-opcode.pth", "w") as z:
        z.writestr("inst-opcode/data.pkl", inst)
        z.writestr("inst-opcode/version", "3\n")
    _check_side_effect(out / "inst-opcode.pth", "inst")

    # A storage shorter than the tensor that views it: rewrite the tiny zip, halving data/<key>
    # of features.conv0.weight.
    src = out.parent / "tiny.zip.pth"
    entries = _zip_entries(src)
    conv_key = _storage_key_of(torch, src, "features.conv0.weight")
    short = [(info, data[: len(data) // 2] if info.filename.endswith(f"/data/{conv_key}") else data) for info, data in entries]
    _write_zip(out / "short-storage.pth", [(zipfile.ZipInfo(i.filename.replace("tiny.zip/", "short-storage/")), d) for i, d in short])

    # Zip bombs: a deflated storage entry of 16 MiB of zeros (16 KiB on disk). One declares
    # 4 GiB uncompressed (refuse before inflating); one declares the 4,096 bytes its tensor
    # needs and inflates to 16 MiB (stop at the declared size).
    bomb_pickle = _one_tensor_pickle(torch, 1024)
    for name, declared in (("zip-bomb-declared", 0xFFFFFFF0), ("zip-bomb-lying", 4096)):
        path = out / f"{name}.pth"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr(f"{name}/data.pkl", bomb_pickle)
            z.writestr(f"{name}/version", "3\n")
            z.writestr(zipfile.ZipInfo(f"{name}/data/0"), bytes(16 * 1024 * 1024), compress_type=zipfile.ZIP_DEFLATED)
        _patch_uncompressed_size(path, f"{name}/data/0", declared)


def _storage_key_of(torch, path: Path, tensor: str) -> str:
    """The storage key torch.save gave a tensor (read back with pickletools, not our code)."""
    import pickletools

    with zipfile.ZipFile(path) as z:
        data = z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(data)]
    for i, (name, arg) in enumerate(ops):
        if name in ("BINUNICODE", "SHORT_BINUNICODE") and arg == tensor:
            for later, larg in ops[i + 1:]:
                if later in ("BINUNICODE", "SHORT_BINUNICODE") and larg not in ("storage", "cpu") and larg.isdigit():
                    return larg
    raise SystemExit(f"no storage key for {tensor} in {path}")


def _one_tensor_pickle(torch, numel: int) -> bytes:
    """data.pkl of torch.save({'x': zeros(numel)}): one float storage with key '0'."""
    buf = io.BytesIO()
    torch.save({"x": torch.zeros(numel)}, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        return z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))


# --------------------------------------------------------------------------------------------
# Keras

def make_keras(out: Path, full: bool) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import h5py
    import keras
    import tensorflow as tf
    from keras.src.applications import densenet
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(SEED)
    if full:
        model = densenet.DenseNet121(weights=None)
        blocks, size, classes, batch, stem_name = [6, 12, 24, 16], 224, 1000, 1, "densenet121"
    else:
        # keras.applications' DenseNet always has four blocks, k = 32 and a 64-filter stem; the
        # smallest is blocks=[1, 1, 1, 1] (195,855 weights).
        blocks, size, classes, batch, stem_name = [1, 1, 1, 1], 32, 3, 2, "tiny"
        model = densenet.DenseNet(blocks=blocks, weights=None, input_shape=(size, size, 3), classes=classes)
    rng = np.random.RandomState(SEED + 1)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.uniform(-0.2, 0.2, n), rng.uniform(-0.2, 0.2, n),
                               rng.uniform(0.5, 1.5, n)])
        elif isinstance(layer, keras.layers.Dense):
            layer.set_weights([layer.get_weights()[0], rng.uniform(-0.5, 0.5, classes)])
    config = tiny_config(32, blocks, 64, 4, size, classes, 1.001e-5)
    versions = {"generator": "scripts/make-import-fixtures.py", "keras": keras.__version__, "tensorflow": tf.__version__,
                "config": json.dumps(config), "seed": str(SEED)}
    out.mkdir(parents=True, exist_ok=True)
    x = fixed_input(batch, size)

    model.save(out / f"{stem_name}.keras")  # Keras 3 archive: config.json + model.weights.h5
    model.save(out / f"{stem_name}.h5")  # legacy HDF5 model file (Keras 2's layout)

    def logits_of(m) -> np.ndarray:
        # The service returns logits; keras.applications ends in softmax. The framework's own
        # Dense layer, with the activation taken off after saving, gives the logits.
        m.get_layer("predictions").activation = keras.activations.linear
        return np.asarray(m(x, training=False)).astype(np.float32)

    f32_logits = logits_of(model)
    note = "keras.applications DenseNet(blocks=%s), random weights and BN statistics" % blocks
    for name in (f"{stem_name}.keras", f"{stem_name}.h5"):
        write_safetensors(out / f"{name}.io.safetensors", {"input": x, "logits": f32_logits}, {**versions, "note": note})
    if full:
        return

    # Weights-only files hold float16 values here (half the size); the reference logits come
    # from the float32 model holding the same rounded values.
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:
            layer.set_weights([w.astype(np.float16).astype(np.float32) for w in ws])
    f16_logits = logits_of(model)
    # Keras 3's weights file (layers/<object path>/vars/<i>), as float16 datasets.
    model.save_weights(out / "tiny.weights.h5")
    _to_float16_datasets(h5py, out / "tiny.weights.h5")
    write_safetensors(out / "tiny.weights.h5.io.safetensors", {"input": x, "logits": f16_logits},
                      {**versions, "note": note + "; model.save_weights (Keras 3 layout), datasets float16"})
    # Keras 2's weights-only layout (layer_names / weight_names) as tf.keras named DenseNet's
    # layers ('conv1/conv', 'conv1/bn', weight names with ':0'): Keras 2 does not install here,
    # so Keras 3's own legacy writer makes the file and h5py renames it the Keras 2 way.
    k2 = out / "tiny.keras2-names.h5"
    with h5py.File(k2, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    _keras2_names(h5py, k2)
    write_safetensors(out / "tiny.keras2-names.h5.io.safetensors", {"input": x, "logits": f16_logits},
                      {**versions, "note": note + "; Keras 2 weights layout with tf.keras names, datasets float16"})

    # Hostile: a .keras archive of another architecture (tiny, not a DenseNet).
    hostile = out / "hostile"
    hostile.mkdir(parents=True, exist_ok=True)
    inp = keras.Input((32, 32, 3))
    y = keras.layers.Conv2D(4, 3, name="conv1_conv")(inp)
    y = keras.layers.GlobalAveragePooling2D(name="avg_pool")(y)
    y = keras.layers.Dense(3, name="predictions")(y)
    keras.Model(inp, y, name="mobilenet_tiny").save(hostile / "other-architecture.keras")


def _to_float16_datasets(h5py, path: Path) -> None:
    """Rewrites every float32 dataset as float16, into a fresh file (HDF5 does not give back
    the space of deleted datasets)."""
    tmp = path.with_suffix(".tmp")
    with h5py.File(path, "r") as src, h5py.File(tmp, "w") as dst:
        def copy(name, obj):
            if isinstance(obj, h5py.Group):
                dst.require_group(name).attrs.update(obj.attrs)
            else:
                data = obj[()]
                dst.create_dataset(name, data=data.astype(np.float16) if data.dtype == np.float32 else data)
        dst.attrs.update(src.attrs)
        src.visititems(copy)
    tmp.replace(path)


def _keras2_names(h5py, path: Path) -> None:
    """Rewrites a Keras 3 legacy weights file with tf.keras's (Keras 2) layer and weight names."""
    rename = {"conv1_conv": "conv1/conv", "conv1_bn": "conv1/bn"}
    tmp = path.with_suffix(".tmp")
    with h5py.File(path, "r") as src, h5py.File(tmp, "w") as dst:
        layer_names = [n.decode() if isinstance(n, bytes) else n for n in src.attrs["layer_names"]]
        new_names = []
        for layer in layer_names:
            new = rename.get(layer, layer)
            weight_names = [w.decode() if isinstance(w, bytes) else w for w in src[layer].attrs["weight_names"]]
            g = dst.create_group(new)
            names = []
            for w in weight_names:
                wn = f"{new}/{w.split('/')[-1]}:0"
                g.create_dataset(wn, data=src[layer][w][()].astype(np.float16))
                names.append(wn.encode())
            g.attrs["weight_names"] = np.array(names, dtype="S") if names else np.array([], dtype="S1")
            new_names.append(new.encode())
        dst.attrs["layer_names"] = np.array(new_names, dtype="S")
        dst.attrs["backend"] = b"tensorflow"
        dst.attrs["keras_version"] = b"2.15.0"
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("framework", choices=["pytorch", "keras"])
    parser.add_argument("--full", metavar="DIR", help="write full-size DenseNet-121 files into DIR instead")
    args = parser.parse_args()
    out = Path(args.full) if args.full else OUT_DIR
    (make_pytorch if args.framework == "pytorch" else make_keras)(out, bool(args.full))
    print(f"wrote {args.framework} fixtures to {out}")


if __name__ == "__main__":
    main()
