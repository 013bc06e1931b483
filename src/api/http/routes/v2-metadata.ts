// Open Inference Protocol metadata: the server (GET /v2), each model and version, and whether
// a model can serve now.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiDeps } from '../../deps.ts';
import { modelConfig, modelMetadata, serverMetadata } from '../../oip/index.ts';
import { errorDocs } from '../openapi.ts';
import { ModelConfigResponse, ModelMetadataResponse, ModelParams, ModelReadyResponse, ModelRefParams, ModelVersionParams, ServerMetadataResponse } from '../schemas.ts';
import { parseInput } from '../validation.ts';

const TAG = 'open inference protocol';
const NOT_FOUND = errorDocs({ 400: 'Malformed model name or version', 404: 'No such model or version' });

export async function v2MetadataRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { service, edge } = deps;

  app.get('/v2', {
    config: { doc: { tag: TAG, summary: 'Server metadata', responses: { 200: { description: 'Name, version, extensions', schema: ServerMetadataResponse } } } },
  }, async () => serverMetadata());

  const describe = (request: FastifyRequest) => {
    const { model, version } = parseInput(ModelRefParams, request.params, 'params');
    request.edge.model = model;
    return service.describe(model, version);
  };
  const metadata = async (request: FastifyRequest) => modelMetadata(describe(request));
  const metadataDoc = (summary: string, params: typeof ModelParams | typeof ModelVersionParams) => ({
    tag: TAG, summary, params, responses: { 200: { description: 'Inputs and outputs (-1 = variable dimension)', schema: ModelMetadataResponse }, ...NOT_FOUND },
  });
  app.get('/v2/models/:model', { config: { doc: metadataDoc('Model metadata', ModelParams) } }, metadata);
  app.get('/v2/models/:model/versions/:version', { config: { doc: metadataDoc('Model version metadata', ModelVersionParams) } }, metadata);

  // Triton's model configuration extension, read-only.
  const config = async (request: FastifyRequest) => modelConfig(describe(request));
  const configDoc = (summary: string, params: typeof ModelParams | typeof ModelVersionParams) => ({
    tag: TAG, summary, params, responses: { 200: { description: "Triton's model configuration (read-only)", schema: ModelConfigResponse }, ...NOT_FOUND },
  });
  app.get('/v2/models/:model/config', { config: { doc: configDoc('Model configuration (Triton extension)', ModelParams) } }, config);
  app.get('/v2/models/:model/versions/:version/config', { config: { doc: configDoc('Model version configuration (Triton extension)', ModelVersionParams) } }, config);

  const ready = async (request: FastifyRequest, reply: FastifyReply) => {
    const { name: model, version } = describe(request); // 404 for an unknown model or version
    if (edge.isReady(model, version)) return { name: model, ready: true };
    if (edge.isDraining) return reply.code(503).send({ name: model, ready: false, error: 'the server is draining' });
    const state = service.listModels().find((m) => m.name === model && (version === undefined || m.version === version));
    return reply.code(503).send({ name: model, ready: false, error: `model ${model} is ${state ? state.state.toLowerCase() : 'not ready'}` });
  };
  const readyDoc = (summary: string, params: typeof ModelParams | typeof ModelVersionParams) => ({
    tag: TAG, summary, params,
    responses: { 200: { description: 'Ready', schema: ModelReadyResponse }, 503: { description: 'Known but not ready', schema: ModelReadyResponse }, ...NOT_FOUND },
  });
  app.get('/v2/models/:model/ready', { config: { quiet: true, doc: readyDoc('Whether the model can serve', ModelParams) } }, ready);
  app.get('/v2/models/:model/versions/:version/ready', { config: { quiet: true, doc: readyDoc('Whether the model version can serve', ModelVersionParams) } }, ready);
}
