"""The do-it-yourself peer: FastAPI + uvicorn (one worker) + one ONNX Runtime session, no
batching, PIL preprocessing: the server many users write first.

  python fastapi_app.py --onnx model.onnx --manifest manifest.json --model NAME --port P [--threads N]

The handler is `async def` and calls the session directly, so one request is computed at a
time on the event loop (as in most tutorials): no threadpool of sessions oversubscribing cores.
POST /v1/models/{model}/classify with a raw image body answers as our server does:
{"model", "predictions": [[{label, index, score} x5]]}.
"""
from __future__ import annotations

import argparse
import os

import uvicorn
from fastapi import FastAPI, HTTPException, Request

from densenet_peer import Classifier

parser = argparse.ArgumentParser()
parser.add_argument("--onnx", required=True)
parser.add_argument("--manifest", required=True)
parser.add_argument("--model", required=True)
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--threads", type=int, default=os.cpu_count())
args = parser.parse_args()

classifier = Classifier(args.onnx, args.manifest, args.threads)
app = FastAPI()


@app.post("/v1/models/{model}/classify")
async def classify(model: str, request: Request) -> dict:
    if model != args.model:
        raise HTTPException(status_code=404, detail=f"unknown model {model!r}")
    body = await request.body()
    try:
        x = classifier.preprocess(body)
    except Exception as err:
        raise HTTPException(status_code=400, detail=f"cannot decode the image: {err}") from err
    logits = classifier.run(x[None])
    return {"model": args.model, "predictions": [classifier.top_k(logits[0], 5)]}


if __name__ == "__main__":
    print(f"fastapi peer: uvicorn {uvicorn.__version__} on 127.0.0.1:{args.port}", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=args.port, workers=1)
