// Friendly classification, called the way people call TorchServe:
//   curl -T cat.jpg :8080/v1/models/<m>/classify        (raw body, PUT or POST)
//   curl -F file=@a.jpg -F file=@b.jpg :8080/v1/classify (multipart, default model)
//   POST {"images": ["<base64>", ...]}                    (JSON)
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { jsonParser, useBodies, type BodyLimit } from '../body-reader.ts';
import { classifyImages } from '../classify-images.ts';
import type { ApiDeps } from '../../deps.ts';
import { admitModel } from '../model-admission.ts';
import { errorDocs, type RouteDoc } from '../openapi.ts';
import { ClassifyJsonBody, ClassifyQuery, ClassifyResponse, ModelListResponse, ModelParams, ModelVersionParams } from '../schemas.ts';
import { parseInput } from '../validation.ts';

const ERRORS = errorDocs({
  400: 'Malformed request: bad query value, invalid base64, an upload that is not an image',
  404: 'No such model or version',
  413: 'Body, file or image count above MAX_BODY_BYTES, MAX_IMAGE_BYTES or MAX_IMAGES_PER_REQUEST',
  429: 'The model queue is full; retry after Retry-After seconds',
  503: 'Model not ready, worker failed (Retry-After) or the server is draining',
  504: 'timeout_ms passed before the answer',
});

function classifyDoc(summary: string, params?: RouteDoc['params']): RouteDoc {
  return {
    tag: 'classification',
    summary,
    description: 'Send the image(s) as the raw body (any image type or application/octet-stream; `curl -T img.jpg` uses PUT), ' +
      'as multipart/form-data files (one or many), or as JSON {"images": [base64, ...]}.',
    ...(params ? { params } : {}),
    query: ClassifyQuery,
    body: {
      'image/*': 'binary',
      'application/octet-stream': 'binary',
      'multipart/form-data': 'binary',
      'application/json': ClassifyJsonBody,
    },
    responses: { 200: { description: 'Top-k classes per image', schema: ClassifyResponse }, ...ERRORS },
  };
}

export async function classifyRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { config, service } = deps;
  const bodyLimit: BodyLimit = { bytes: config.MAX_BODY_BYTES, setting: 'MAX_BODY_BYTES' };
  // A raw body is one image: it may not exceed the per-image limit either.
  const rawLimit: BodyLimit = config.MAX_IMAGE_BYTES < config.MAX_BODY_BYTES ? { bytes: config.MAX_IMAGE_BYTES, setting: 'MAX_IMAGE_BYTES' } : bodyLimit;
  useBodies(app, rawLimit, 'raw');
  app.addContentTypeParser('application/json', jsonParser(bodyLimit));
  await app.register(multipart, {
    limits: {
      fileSize: config.MAX_IMAGE_BYTES,
      files: config.MAX_IMAGES_PER_REQUEST,
      fields: 32,
      fieldSize: 64 * 1024,
      parts: config.MAX_IMAGES_PER_REQUEST + 32,
      headerPairs: 200,
    },
  });

  const classify = async (request: FastifyRequest) => {
    const query = parseInput(ClassifyQuery, request.query, 'query');
    const images = await classifyImages(request, config);
    const { model, version } = request.edge;
    return service.classify(model!, images, query.top_k ?? config.DEFAULT_TOP_K, request.edge.requestOptions({
      ...(version !== undefined ? { version } : {}),
      ...(query.timeout_ms !== undefined ? { timeoutMs: query.timeout_ms } : {}),
      ...(query.priority !== undefined ? { priority: query.priority } : {}),
    }));
  };
  const onRequest = admitModel;
  const methods = ['POST', 'PUT'];

  app.route({ method: methods, url: '/v1/classify', onRequest, handler: classify,
    config: { inference: true, doc: classifyDoc('Classify with the default model (DEFAULT_MODEL, else the only or first model)') } });
  app.route({ method: methods, url: '/v1/models/:model/classify', onRequest, handler: classify,
    config: { inference: true, doc: classifyDoc("Classify with the model's newest version", ModelParams) } });
  app.route({ method: methods, url: '/v1/models/:model/versions/:version/classify', onRequest, handler: classify,
    config: { inference: true, doc: classifyDoc('Classify with one version of a model', ModelVersionParams) } });

  app.get('/v1/models', {
    config: { doc: { tag: 'classification', summary: 'Every loaded model version with its state', responses: { 200: { description: 'Models', schema: ModelListResponse } } } },
  }, async () => ({ models: service.listModels() }));
}
