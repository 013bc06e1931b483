// POST /v2/models/{m}[/versions/{v}]/infer — the Open Inference Protocol's inference call, with
// Triton's binary data, classification and schedule-policy (timeout, priority) extensions.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiDeps } from '../../deps.ts';
import { infer } from '../../oip/index.ts';
import { INFERENCE_HEADER, splitBody } from '../binary-data.ts';
import { decodeContentEncoding, parseJson, useBodies } from '../body-reader.ts';
import { admitModel } from '../model-admission.ts';
import { errorDocs, type RouteDoc } from '../openapi.ts';
import { InferRequest, InferResponse, ModelParams, ModelVersionParams } from '../schemas.ts';
import { parseInput } from '../validation.ts';
import { toInferReply, toInferRequest } from '../v2-wire.ts';

function inferDoc(summary: string, params: RouteDoc['params']): RouteDoc {
  return {
    tag: 'open inference protocol',
    summary,
    description:
      'Input `input`: FP32 or UINT8 pixels [N,H,W,C] (or [N,C,H,W]), or BYTES encoded images (one element per image; ' +
      'base64 strings in JSON). Outputs `logits` and `probabilities` (both when `outputs` is omitted); ' +
      '`parameters.classification: K` returns BYTES "score:index:label". Binary data extension: send the header ' +
      'Inference-Header-Content-Length: <JSON bytes> and the tensors raw after the JSON (application/octet-stream below); ' +
      'the response uses the same layout when any output is binary. `parameters.timeout` is in microseconds.',
    params,
    body: { 'application/json': InferRequest, 'application/octet-stream': 'binary' },
    responses: {
      200: {
        description: 'Outputs (JSON, or JSON header + binary tensors when Inference-Header-Content-Length is set)',
        schema: InferResponse,
        headers: { 'Inference-Header-Content-Length': 'Present when outputs are binary: bytes of JSON before them' },
      },
      ...errorDocs({
        400: 'Malformed request (the message names the field)',
        404: 'No such model or version',
        413: 'Body above MAX_BODY_BYTES or more images than MAX_IMAGES_PER_REQUEST',
        429: 'The model queue is full; retry after Retry-After seconds',
        503: 'Model not ready, worker failed (Retry-After) or the server is draining',
        504: 'parameters.timeout passed before the answer',
      }),
    },
  };
}

export async function v2InferenceRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { service, config } = deps;
  // JSON or JSON + binary tensors, whatever Content-Type the client sends (tritonclient sets none).
  const bodyLimit = { bytes: config.MAX_BODY_BYTES, setting: 'MAX_BODY_BYTES' };
  useBodies(app, bodyLimit, 'raw');

  const limits = { maxTensorElements: config.MAX_TENSOR_ELEMENTS, maxImagesPerRequest: config.MAX_IMAGES_PER_REQUEST };

  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    const { edge } = request;
    const received = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const raw = await decodeContentEncoding(received, request.headers['content-encoding'], bodyLimit);
    const { json, binary } = splitBody(raw, request.headers[INFERENCE_HEADER]);
    const body = parseInput(InferRequest, parseJson(json), 'body');
    const response = await infer(service, toInferRequest(body, binary, { model: edge.model!, version: edge.version }), edge, limits);
    const answer = toInferReply(response, body, request.id);
    if (!answer.binary) return answer.json;
    return reply.header(INFERENCE_HEADER, String(answer.headerLength)).type('application/octet-stream').send(answer.body);
  };

  app.post('/v2/models/:model/infer', { onRequest: admitModel, config: { inference: true, doc: inferDoc("Infer with the model's newest version", ModelParams) } }, handler);
  app.post('/v2/models/:model/versions/:version/infer', {
    onRequest: admitModel, config: { inference: true, doc: inferDoc('Infer with one version of a model', ModelVersionParams) },
  }, handler);
}
