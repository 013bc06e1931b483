// Model management on Triton's paths: list the repository, load (or reload) and unload models
// without a restart. Behind the bearer token when AUTH_TOKEN is set.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { bearerGuard } from '../auth.ts';
import { useBodies } from '../body-reader.ts';
import type { ApiDeps } from '../../deps.ts';
import { loadModel, repositoryIndex, unloadModel } from '../../oip/index.ts';
import { errorDocs, type RouteDoc } from '../openapi.ts';
import { EmptyResponse, LoadBody, ModelParams, RepositoryIndexBody, RepositoryIndexResponse, UnloadBody } from '../schemas.ts';
import { parseInput } from '../validation.ts';

const TAG = 'model repository';

const AUTH_ERRORS = errorDocs({ 401: 'No bearer token (when AUTH_TOKEN is set)', 403: 'Wrong bearer token' });

export async function repositoryRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { service, config } = deps;
  useBodies(app, { bytes: config.MAX_BODY_BYTES, setting: 'MAX_BODY_BYTES' }, 'json');
  const guard = bearerGuard(config.AUTH_TOKEN);
  if (guard) app.addHook('onRequest', guard);
  const auth = guard !== undefined;

  const indexDoc: RouteDoc = {
    tag: TAG, summary: 'Every model folder in the repository with the state of its versions', auth,
    body: { 'application/json': RepositoryIndexBody }, bodyRequired: false,
    responses: { 200: { description: 'Models; unloaded ones are UNAVAILABLE with a reason', schema: RepositoryIndexResponse }, ...AUTH_ERRORS },
  };
  app.post('/v2/repository/index', { config: { doc: indexDoc } }, async (request: FastifyRequest) => {
    const body = parseInput(RepositoryIndexBody, request.body, 'body');
    return repositoryIndex(service, body?.ready === true);
  });

  const modelDoc = (summary: string, body: RouteDoc['body']): RouteDoc => ({
    tag: TAG, summary, auth, params: ModelParams, body, bodyRequired: false,
    responses: {
      200: { description: 'Done', schema: EmptyResponse },
      ...errorDocs({ 400: 'Malformed name, or the model files are invalid', 404: 'No such model' }),
      ...AUTH_ERRORS,
    },
  });
  app.post('/v2/repository/models/:model/load', {
    config: { doc: modelDoc('Load (or reload, without dropping requests) a model from the repository', { 'application/json': LoadBody }) },
  }, async (request: FastifyRequest) => {
    const { model } = parseInput(ModelParams, request.params, 'params');
    const body = parseInput(LoadBody, request.body, 'body');
    request.edge.model = model;
    await loadModel(service, model, body?.parameters);
    return {};
  });
  app.post('/v2/repository/models/:model/unload', {
    config: { doc: modelDoc('Unload a model once its in-flight requests finish', { 'application/json': UnloadBody }) },
  }, async (request: FastifyRequest) => {
    const { model } = parseInput(ModelParams, request.params, 'params');
    parseInput(UnloadBody, request.body, 'body');
    request.edge.model = model;
    await unloadModel(service, model);
    return {};
  });
}
