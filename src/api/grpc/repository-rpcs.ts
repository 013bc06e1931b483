// Triton's model repository RPCs (tritonclient's get_model_repository_index, load_model,
// unload_model): the same operations as HTTP's /v2/repository, behind the same management token
// (`authorization: Bearer <token>` metadata) when AUTH_TOKEN is set.
import type { Metadata } from '@grpc/grpc-js';
import { invalidInput } from '../../errors.ts';
import { bearerCheck } from '../auth.ts';
import type { ApiDeps } from '../deps.ts';
import { loadModel, repositoryIndex, unloadModel } from '../oip/index.ts';
import type { CallHandler } from './calls.ts';
import type { ModelRepositoryParameter__Output } from './generated/inference/ModelRepositoryParameter.ts';
import type { RepositoryIndexRequest__Output } from './generated/inference/RepositoryIndexRequest.ts';
import type { RepositoryIndexResponse } from './generated/inference/RepositoryIndexResponse.ts';
import type { RepositoryModelLoadRequest__Output } from './generated/inference/RepositoryModelLoadRequest.ts';
import type { RepositoryModelUnloadRequest__Output } from './generated/inference/RepositoryModelUnloadRequest.ts';

export interface RepositoryHandlers {
  RepositoryIndex: CallHandler<RepositoryIndexRequest__Output, RepositoryIndexResponse>;
  RepositoryModelLoad: CallHandler<RepositoryModelLoadRequest__Output, object>;
  RepositoryModelUnload: CallHandler<RepositoryModelUnloadRequest__Output, object>;
}

export function repositoryRpcs(deps: ApiDeps): RepositoryHandlers {
  const check = bearerCheck(deps.config.AUTH_TOKEN);
  const authorize = (metadata: Metadata): void => check?.(metadata.get('authorization')[0]);
  const modelName = (name: string): string => {
    if (!name) throw invalidInput('model_name', 'required');
    return name;
  };
  return {
    async RepositoryIndex(request, _ctx, metadata) {
      authorize(metadata);
      const models = await repositoryIndex(deps.service, request.ready);
      return { models: models.map((m) => ({ name: m.name, version: m.version ?? '', state: m.state, reason: m.reason ?? '' })) };
    },
    async RepositoryModelLoad(request, ctx, metadata) {
      authorize(metadata);
      ctx.model = modelName(request.model_name);
      await loadModel(deps.service, ctx.model, request.parameters as Record<string, ModelRepositoryParameter__Output>);
      return {};
    },
    async RepositoryModelUnload(request, ctx, metadata) {
      authorize(metadata);
      ctx.model = modelName(request.model_name);
      await unloadModel(deps.service, ctx.model);
      return {};
    },
  };
}
