// densenet.v1.Classifier: encoded images in, top-k labels out (Classify), and the models this
// server holds (ListModels).
import { invalidInput } from '../../errors.ts';
import type { ModelState as CoreModelState } from '../../inference/index.ts';
import type { ApiDeps } from '../deps.ts';
import { defaultModelName } from '../edge/index.ts';
import type { CallHandler } from './calls.ts';
import type { ClassifyRequest__Output } from './generated/densenet/v1/ClassifyRequest.ts';
import type { ClassifyResponse } from './generated/densenet/v1/ClassifyResponse.ts';
import type { ListModelsResponse } from './generated/densenet/v1/ListModelsResponse.ts';
import type { ModelState } from './generated/densenet/v1/ModelState.ts';

const STATES: Record<CoreModelState, ModelState> = {
  LOADING: 'MODEL_STATE_LOADING',
  READY: 'MODEL_STATE_READY',
  UNAVAILABLE: 'MODEL_STATE_UNAVAILABLE',
  UNLOADING: 'MODEL_STATE_UNLOADING',
};

export function classify(deps: ApiDeps): CallHandler<ClassifyRequest__Output, ClassifyResponse> {
  const { service, config } = deps;
  return async (request, ctx) => {
    const { model, version } = ctx.admit(request.model_name, request.model_version);
    if (request.top_k < 0) throw invalidInput('top_k', `${request.top_k} is negative; 0 means the default (${config.DEFAULT_TOP_K})`);
    const k = request.top_k || config.DEFAULT_TOP_K;
    const images = request.images.map((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
    const result = await service.classify(model, images, k, ctx.requestOptions(version !== undefined ? { version } : {}));
    return {
      model_name: result.model,
      model_version: result.version,
      results: result.predictions.map((predictions) => ({ predictions })),
    };
  };
}

export function listModels(deps: ApiDeps) {
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
