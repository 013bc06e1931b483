// inference.GRPCInferenceService's health and metadata RPCs: ServerLive, ServerReady,
// ModelReady, ServerMetadata, ModelMetadata.
import { createRequire } from 'node:module';
import type { GrpcServerDeps } from './deps.ts';
import type { ModelMetadataRequest__Output } from './generated/inference/ModelMetadataRequest.ts';
import type { ModelMetadataResponse } from './generated/inference/ModelMetadataResponse.ts';
import type { ModelReadyRequest__Output } from './generated/inference/ModelReadyRequest.ts';
import type { ModelReadyResponse } from './generated/inference/ModelReadyResponse.ts';
import type { ServerLiveResponse } from './generated/inference/ServerLiveResponse.ts';
import type { ServerMetadataResponse } from './generated/inference/ServerMetadataResponse.ts';
import type { ServerReadyResponse } from './generated/inference/ServerReadyResponse.ts';
import type { CallContext } from './call-context.ts';
import { invalid } from './tensor-codec.ts';

export const SERVER_NAME = 'densenet-serve';
export const SERVER_VERSION: string = (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;
/** Open Inference Protocol extensions this endpoint implements. */
export const GRPC_EXTENSIONS = ['classification'];

export function serverLive(): ServerLiveResponse {
  // Answering at all is the proof: the event loop is free and the process is up.
  return { live: true };
}

export function serverReady(readiness: { isServerReady(): boolean }) {
  return (): ServerReadyResponse => ({ ready: readiness.isServerReady() });
}

export function modelReady(deps: GrpcServerDeps) {
  return (request: ModelReadyRequest__Output, ctx: CallContext): ModelReadyResponse => {
    if (!request.name) throw invalid('name', 'required');
    ctx.model = request.name;
    return { ready: !deps.lifecycle.isDraining() && deps.service.isReady(request.name, request.version || undefined) };
  };
}

export function serverMetadata(): ServerMetadataResponse {
  return { name: SERVER_NAME, version: SERVER_VERSION, extensions: GRPC_EXTENSIONS };
}

export function modelMetadata(deps: GrpcServerDeps) {
  return (request: ModelMetadataRequest__Output, ctx: CallContext): ModelMetadataResponse => {
    if (!request.name) throw invalid('name', 'required');
    ctx.model = request.name;
    const meta = deps.service.metadata(request.name, request.version || undefined);
    return {
      name: meta.name,
      versions: meta.versions,
      platform: meta.platform,
      inputs: meta.inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })),
      outputs: meta.outputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })),
    };
  };
}
