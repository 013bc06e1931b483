"""Interop client for test/api/grpc/interop.test.ts: Python grpcio with stubs that grpcio-tools
generated from our proto/ (and grpc-health-check's health.proto), calling the server the way
tritonclient.grpc does: tensors in raw_input_contents, priority as uint64_param, timeout as
int64_param, classification as an output parameter; ModelConfig as Triton's image_client example
reads it first (max_batch_size, the input's format and dims); ModelStreamInfer as
start_stream/async_stream_infer use it (one response per request, errors in the stream); NCHW
input with no layout parameter (tritonclient's InferInput cannot set one).

usage: interop_client.py ADDRESS MODEL INPUT_FILE N
  INPUT_FILE holds N x 16 x 16 x 3 little-endian float32 values (NHWC).
Prints one JSON object on stdout.
"""
import json
import struct
import sys

import grpc
from health.v1 import health_pb2, health_pb2_grpc
from inference import grpc_predict_v2_pb2 as pb, grpc_predict_v2_pb2_grpc as pb_grpc
from inference import model_config_pb2 as mc


def parse_bytes_tensor(raw):
    out, offset = [], 0
    while offset < len(raw):
        (length,) = struct.unpack_from("<I", raw, offset)
        out.append(raw[offset + 4 : offset + 4 + length].decode("utf-8"))
        offset += 4 + length
    return out


def main():
    address, model, input_file, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    with open(input_file, "rb") as f:
        data = f.read()

    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        model_health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=model), timeout=10)
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        live = stub.ServerLive(pb.ServerLiveRequest(), timeout=10).live
        metadata = stub.ModelMetadata(pb.ModelMetadataRequest(name=model), timeout=10)

        request = pb.ModelInferRequest(model_name=model, id="py-1")
        request.parameters["priority"].uint64_param = 1
        request.parameters["timeout"].int64_param = 30_000_000  # µs
        tensor = request.inputs.add()
        tensor.name = "input"
        tensor.datatype = "FP32"
        tensor.shape.extend([n, 16, 16, 3])
        request.outputs.add().name = "logits"
        top = request.outputs.add()
        top.name = "probabilities"
        top.parameters["classification"].int64_param = 2
        request.raw_input_contents.append(data)
        response = stub.ModelInfer(request, timeout=30, metadata=(("x-request-id", "python-interop"),))

        try:
            stub.ModelInfer(pb.ModelInferRequest(model_name="absent-model"), timeout=10)
            missing = "OK"
        except grpc.RpcError as err:
            missing = err.code().name

        config = stub.ModelConfig(pb.ModelConfigRequest(name=model), timeout=10).config

        def nchw_request(request_id, model_name):
            r = pb.ModelInferRequest(model_name=model_name, id=request_id)
            t = r.inputs.add()
            t.name = "input"
            t.datatype = "FP32"
            t.shape.extend([n, 3, 16, 16])
            r.outputs.add().name = "logits"
            r.raw_input_contents.append(nchw)
            return r

        values = struct.unpack("<%df" % (len(data) // 4), data)
        nchw = struct.pack("<%df" % len(values), *[values[((b * 16 + y) * 16 + x) * 3 + c]
                                                    for b in range(n) for c in range(3) for y in range(16) for x in range(16)])
        requests = [nchw_request("s-0", model), nchw_request("s-1", "absent-model"), nchw_request("s-2", model)]
        stream = []
        for message in stub.ModelStreamInfer(iter(requests), timeout=30):
            entry = {"id": message.infer_response.id, "error": message.error_message}
            if not message.error_message:
                raw = message.infer_response.raw_output_contents[0]
                entry["logits"] = list(struct.unpack("<%df" % (len(raw) // 4), raw))
            stream.append(entry)

    logits = response.raw_output_contents[0]
    print(json.dumps({
        "health": health_pb2.HealthCheckResponse.ServingStatus.Name(health.status),
        "model_health": health_pb2.HealthCheckResponse.ServingStatus.Name(model_health.status),
        "live": live,
        "metadata_input_shape": list(metadata.inputs[0].shape),
        "model_name": response.model_name,
        "model_version": response.model_version,
        "id": response.id,
        "outputs": [{"name": o.name, "datatype": o.datatype, "shape": list(o.shape)} for o in response.outputs],
        "logits": list(struct.unpack("<%df" % (len(logits) // 4), logits)),
        "classification": parse_bytes_tensor(response.raw_output_contents[1]),
        "missing_model_status": missing,
        "config": {
            "name": config.name, "platform": config.platform, "backend": config.backend, "max_batch_size": config.max_batch_size,
            "input": [{"name": i.name, "data_type": mc.DataType.Name(i.data_type), "format": mc.ModelInput.Format.Name(i.format), "dims": list(i.dims)} for i in config.input],
            "output": [{"name": o.name, "data_type": mc.DataType.Name(o.data_type), "dims": list(o.dims)} for o in config.output],
            "instance_count": [g.count for g in config.instance_group],
            "max_queue_delay_microseconds": config.dynamic_batching.max_queue_delay_microseconds,
        },
        "stream": sorted(stream, key=lambda e: e["id"]),
    }))


if __name__ == "__main__":
    main()
