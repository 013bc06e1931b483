// inference.GRPCInferenceService's health, metadata and configuration RPCs: ServerLive,
// ServerReady, ModelReady, ServerMetadata, ModelMetadata, ModelConfig — the Open Inference
// Protocol's answers (../oip) on the gRPC wire. An unknown model is NOT_FOUND everywhere, as in
// Triton (ModelReady included).
import { invalidInput } from '../../errors.ts';
import type { ApiDeps } from '../deps.ts';
import { modelConfig, modelMetadata, serverMetadata } from '../oip/index.ts';
import type { CallHandler } from './calls.ts';
import type { ModelConfigRequest__Output } from './generated/inference/ModelConfigRequest.ts';
import type { ModelConfigResponse } from './generated/inference/ModelConfigResponse.ts';
import type { ModelMetadataRequest__Output } from './generated/inference/ModelMetadataRequest.ts';
import type { ModelMetadataResponse } from './generated/inference/ModelMetadataResponse.ts';
import type { ModelReadyRequest__Output } from './generated/inference/ModelReadyRequest.ts';
import type { ModelReadyResponse } from './generated/inference/ModelReadyResponse.ts';
import type { ServerLiveResponse } from './generated/inference/ServerLiveResponse.ts';
import type { ServerMetadataResponse } from './generated/inference/ServerMetadataResponse.ts';
import type { ServerReadyResponse } from './generated/inference/ServerReadyResponse.ts';

interface ModelRequest {
  name: string;
  version: string;
}

/** The model (version) a metadata request names; MODEL_NOT_FOUND when the server has none. */
function describeModel(deps: ApiDeps, request: ModelRequest, ctx: { model: string | undefined }) {
  if (!request.name) throw invalidInput('name', 'required');
  ctx.model = request.name;
  return deps.service.describe(request.name, request.version || undefined);
}

export function serverLive(): ServerLiveResponse {
  // Answering at all is the proof: the event loop is free and the process is up.
  return { live: true };
}

export function serverReady(readiness: { isServerReady(): boolean }) {
  return (): ServerReadyResponse => ({ ready: readiness.isServerReady() });
}

export function modelReady(deps: ApiDeps): CallHandler<ModelReadyRequest__Output, ModelReadyResponse> {
  return (request, ctx) => {
    describeModel(deps, request, ctx);
    return { ready: deps.edge.isReady(request.name, request.version || undefined) };
  };
}

export function serverMetadataRpc(): ServerMetadataResponse {
  return serverMetadata();
}

export function modelMetadataRpc(deps: ApiDeps): CallHandler<ModelMetadataRequest__Output, ModelMetadataResponse> {
  return (request, ctx) => modelMetadata(describeModel(deps, request, ctx));
}

export function modelConfigRpc(deps: ApiDeps): CallHandler<ModelConfigRequest__Output, ModelConfigResponse> {
  return (request, ctx) => ({ config: modelConfig(describeModel(deps, request, ctx)) });
}
