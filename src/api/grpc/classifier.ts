// densenet.v1.Classifier: encoded images in, top-k labels out (Classify), and the models this
// server holds (ListModels).
import { ServeError } from '../../errors.ts';
import type { ModelState as CoreModelState } from '../../inference/index.ts';
import { defaultModelName } from '../default-model.ts';
import type { CallContext } from './call-context.ts';
import type { GrpcServerDeps } from './deps.ts';
import type { ClassifyRequest__Output } from './generated/densenet/v1/ClassifyRequest.ts';
import type { ClassifyResponse } from './generated/densenet/v1/ClassifyResponse.ts';
import type { ListModelsResponse } from './generated/densenet/v1/ListModelsResponse.ts';
import type { ModelState } from './generated/densenet/v1/ModelState.ts';
import { invalid } from './tensor-codec.ts';

const STATES: Record<CoreModelState, ModelState> = {
  LOADING: 'MODEL_STATE_LOADING',
  READY: 'MODEL_STATE_READY',
  UNAVAILABLE: 'MODEL_STATE_UNAVAILABLE',
  UNLOADING: 'MODEL_STATE_UNLOADING',
};

export function classify(deps: GrpcServerDeps) {
  return async (request: ClassifyRequest__Output, ctx: CallContext): Promise<ClassifyResponse> => {
    if (deps.lifecycle.isDraining()) throw new ServeError('SHUTTING_DOWN', 'the server is draining and accepts no new requests');
    const model = request.model_name || defaultModelName(deps.service, deps.config.DEFAULT_MODEL);
    ctx.model = model;
    if (request.top_k < 0) throw invalid('top_k', `${request.top_k} is negative; 0 means the default (${deps.config.DEFAULT_TOP_K})`);
    const k = request.top_k || deps.config.DEFAULT_TOP_K;
    const images = request.images.map((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
    const result = await deps.service.classify(model, images, k, ctx.requestOptions(request.model_version ? { version: request.model_version } : {}));
    return {
      model_name: result.model,
      model_version: result.version,
      results: result.predictions.map((predictions) => ({ predictions })),
    };
  };
}

export function listModels(deps: GrpcServerDeps) {
  return (): ListModelsResponse => {
    const models = deps.service.listModels()
      .sort((a, b) => a.name.localeCompare(b.name) || Number(a.version) - Number(b.version))
      .map((m) => ({ name: m.name, version: m.version, state: STATES[m.state], reason: m.reason ?? '' }));
    let defaultModel = '';
    try {
      defaultModel = defaultModelName(deps.service, deps.config.DEFAULT_MODEL);
    } catch {
      // No model loaded: no default to report.
    }
    return { models, default_model: defaultModel };
  };
}
