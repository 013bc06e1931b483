// Loads our wire contracts (proto/**) and the standard health proto at run time with
// @grpc/proto-loader. One set of loader options, matching the flags the types in ./generated
// were generated with (scripts/generate-proto-types.ts): field names as written in the .proto,
// 64-bit integers as decimal strings (exact; shapes and parameters are range-checked before use),
// enums as their names, bytes as Buffers, defaults filled in, oneofs reported by name.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import type { ProtoGrpcType as ClassifyProto } from './generated/classify.ts';
import type { ProtoGrpcType as PredictProto } from './generated/grpc_predict_v2.ts';

export const PROTO_DIR = fileURLToPath(new URL('../../../proto', import.meta.url));
export const INFERENCE_PROTO = 'inference/grpc_predict_v2.proto';
export const CLASSIFY_PROTO = 'densenet/v1/classify.proto';
const HEALTH_PROTO = 'health/v1/health.proto';
const HEALTH_PROTO_DIR = path.resolve(path.dirname(healthProtoPath), '../..');

export const LOADER_OPTIONS: protoLoader.Options = Object.freeze({
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
});

export const INFERENCE_SERVICE_NAME = 'inference.GRPCInferenceService';
export const CLASSIFIER_SERVICE_NAME = 'densenet.v1.Classifier';
export const HEALTH_SERVICE_NAME = 'grpc.health.v1.Health';

export interface LoadedProtos {
  /** Every file, the health proto included: what server reflection describes. */
  packageDefinition: protoLoader.PackageDefinition;
  inference: PredictProto['inference'];
  densenet: ClassifyProto['densenet'];
}

let loaded: LoadedProtos | undefined;

/**
 * What our services' request deserializers return for bytes protobufjs cannot decode. grpc-js
 * would answer them itself with INTERNAL ("Error deserializing request"), the status of a bug in
 * the server, with no error code; the bytes are the client's mistake, so the call edge
 * (call-context.ts) answers INVALID_ARGUMENT with INVALID_INPUT instead.
 */
export class UndecodableRequest {
  constructor(readonly messageType: string, readonly reason: string) {}
}

function tolerateUndecodable(service: grpc.ServiceDefinition): void {
  for (const method of Object.values(service)) {
    const decode = method.requestDeserialize;
    const messageType = (method as { requestType?: { type?: { name?: unknown } } }).requestType?.type?.name;
    method.requestDeserialize = (bytes: Buffer): unknown => {
      try {
        return decode(bytes);
      } catch (err) {
        return new UndecodableRequest(typeof messageType === 'string' ? messageType : 'request', (err as Error).message.slice(0, 200));
      }
    };
  }
}

/** Parses the protos once per process. */
export function loadProtos(): LoadedProtos {
  if (!loaded) {
    const packageDefinition = protoLoader.loadSync([INFERENCE_PROTO, CLASSIFY_PROTO, HEALTH_PROTO], {
      ...LOADER_OPTIONS,
      includeDirs: [PROTO_DIR, HEALTH_PROTO_DIR],
    });
    const objects = grpc.loadPackageDefinition(packageDefinition) as unknown as PredictProto & ClassifyProto;
    // The service definitions are the package definition's own objects, loaded once: the servers
    // built from them share the wrapped deserializers (clients only serialize requests).
    tolerateUndecodable(objects.inference.GRPCInferenceService.service as grpc.ServiceDefinition);
    tolerateUndecodable(objects.densenet.v1.Classifier.service as grpc.ServiceDefinition);
    loaded = { packageDefinition, inference: objects.inference, densenet: objects.densenet };
  }
  return loaded;
}
