"""Ray Serve peer: one deployment, its own dynamic batching (@serve.batch), PIL preprocessing
and one ONNX Runtime session, behind Ray Serve's HTTP proxy on 127.0.0.1.

  python ray_serve_app.py --onnx model.onnx --manifest manifest.json --model NAME --port P
      [--cpus N] [--threads N] [--max-batch 8] [--batch-wait-s 0.002] [--max-ongoing 16]

Answers POST <any path> (the bench uses /v1/models/{m}/classify) with a raw image body, as our
server's classify route does: {"model", "predictions": [[{label, index, score} x5]]}. Prints
READY once serve.run has the replica up; SIGTERM shuts Serve and Ray down.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

import numpy as np
import ray
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

from densenet_peer import Classifier

parser = argparse.ArgumentParser()
parser.add_argument("--onnx", required=True)
parser.add_argument("--manifest", required=True)
parser.add_argument("--model", required=True)
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--cpus", type=int, default=os.cpu_count())
parser.add_argument("--threads", type=int, default=os.cpu_count())
parser.add_argument("--max-batch", type=int, default=8)
parser.add_argument("--batch-wait-s", type=float, default=0.002)
# Ray's default is 5, which caps a @serve.batch batch at 5; Ray's docs ask for at least the
# batch size. 2x lets the next batch gather while one runs.
parser.add_argument("--max-ongoing", type=int, default=16)
args = parser.parse_args()


@serve.deployment(num_replicas=1)
class DenseNetClassifier:
    def __init__(self, onnx: str, manifest: str, model: str, threads: int, max_batch: int, wait_s: float) -> None:
        self.classifier = Classifier(onnx, manifest, threads)
        self.model = model
        self.classify.set_max_batch_size(max_batch)
        self.classify.set_batch_wait_timeout_s(wait_s)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.002)
    async def classify(self, images: list[bytes]) -> list[object]:
        inputs, answers = [], []
        for data in images:
            try:
                inputs.append(self.classifier.preprocess(data))
                answers.append(None)
            except Exception as err:  # one bad upload must not fail its batch
                answers.append(err)
        if inputs:
            logits = iter(self.classifier.run(np.stack(inputs)))
            answers = [a if isinstance(a, Exception) else self.classifier.top_k(next(logits), 5) for a in answers]
        return answers

    async def __call__(self, request: Request) -> JSONResponse:
        answer = await self.classify(await request.body())
        if isinstance(answer, Exception):
            return JSONResponse({"error": f"cannot decode the image: {answer}"}, status_code=400)
        return JSONResponse({"model": self.model, "predictions": [answer]})


def main() -> None:
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    app = DenseNetClassifier.options(max_ongoing_requests=args.max_ongoing).bind(
        args.onnx, args.manifest, args.model, args.threads, args.max_batch, args.batch_wait_s)
    serve.run(app, name="densenet", route_prefix="/")
    print(f"READY ray {ray.__version__} on 127.0.0.1:{args.port}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    serve.shutdown()
    ray.shutdown()
    sys.exit(0)


if __name__ == "__main__":
    main()
