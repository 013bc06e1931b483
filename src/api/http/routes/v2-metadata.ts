// Open Inference Protocol metadata: the server (GET /v2), each model and version, and whether
// a model can serve now.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { HttpDeps } from '../deps.ts';
import { errorDocs } from '../openapi.ts';
import { ModelConfigResponse, ModelMetadataResponse, ModelParams, ModelReadyResponse, ModelRefParams, ModelVersionParams, ServerMetadataResponse } from '../schemas.ts';
import { EXTENSIONS, SERVER_INFO } from '../server-info.ts';
import { parseInput } from '../validation.ts';

const TAG = 'open inference protocol';
const NOT_FOUND = errorDocs({ 400: 'Malformed model name or version', 404: 'No such model or version' });

export async function v2MetadataRoutes(app: FastifyInstance, deps: HttpDeps): Promise<void> {
  const { service } = deps;

  app.get('/v2', {
    config: { doc: { tag: TAG, summary: 'Server metadata', responses: { 200: { description: 'Name, version, extensions', schema: ServerMetadataResponse } } } },
  }, async () => ({ name: SERVER_INFO.name, version: SERVER_INFO.version, extensions: [...EXTENSIONS] }));

  const metadata = async (request: FastifyRequest) => {
    const { model, version } = parseInput(ModelRefParams, request.params, 'params');
    const meta = service.metadata(model, version);
    return { name: meta.name, versions: meta.versions, platform: meta.platform, inputs: meta.inputs, outputs: meta.outputs };
  };
  const metadataDoc = (summary: string, params: typeof ModelParams | typeof ModelVersionParams) => ({
    tag: TAG, summary, params, responses: { 200: { description: 'Inputs and outputs (-1 = variable dimension)', schema: ModelMetadataResponse }, ...NOT_FOUND },
  });
  app.get('/v2/models/:model', { config: { doc: metadataDoc('Model metadata', ModelParams) } }, metadata);
  app.get('/v2/models/:model/versions/:version', { config: { doc: metadataDoc('Model version metadata', ModelVersionParams) } }, metadata);

  // Triton's model configuration extension, read-only: dims exclude the batch dimension.
  const modelConfig = async (request: FastifyRequest) => {
    const { model, version } = parseInput(ModelRefParams, request.params, 'params');
    const meta = service.metadata(model, version);
    return {
      name: meta.name,
      platform: meta.platform,
      backend: 'tfjs',
      max_batch_size: meta.maxBatchSize,
      input: meta.inputs.map((t) => ({ name: t.name, data_type: `TYPE_${t.datatype}`, format: 'FORMAT_NHWC', dims: t.shape.slice(1) })),
      output: meta.outputs.map((t) => ({ name: t.name, data_type: `TYPE_${t.datatype}`, dims: t.shape.slice(1) })),
    };
  };
  const configDoc = (summary: string, params: typeof ModelParams | typeof ModelVersionParams) => ({
    tag: TAG, summary, params, responses: { 200: { description: "Triton's model configuration (read-only)", schema: ModelConfigResponse }, ...NOT_FOUND },
  });
  app.get('/v2/models/:model/config', { config: { doc: configDoc('Model configuration (Triton extension)', ModelParams) } }, modelConfig);
  app.get('/v2/models/:model/versions/:version/config', { config: { doc: configDoc('Model version configuration (Triton extension)', ModelVersionParams) } }, modelConfig);

  const ready = async (request: FastifyRequest, reply: FastifyReply) => {
    const { model, version } = parseInput(ModelRefParams, request.params, 'params');
    service.metadata(model, version); // 404 for an unknown model or version
    if (service.isReady(model, version)) return { name: model, ready: true };
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
