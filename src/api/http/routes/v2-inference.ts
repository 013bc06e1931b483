// POST /v2/models/{m}[/versions/{v}]/infer — the Open Inference Protocol's inference call, with
// Triton's binary data, classification and schedule-policy (timeout, priority) extensions.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { INFERENCE_HEADER, splitBody } from '../binary-data.ts';
import { decodeContentEncoding, parseJson, useBodies } from '../body-reader.ts';
import type { HttpDeps } from '../deps.ts';
import { resolveModel } from '../model-ref.ts';
import { errorDocs, type RouteDoc } from '../openapi.ts';
import { requestOptions } from '../request-context.ts';
import { InferRequest, InferResponse, ModelParams, ModelVersionParams } from '../schemas.ts';
import { decodeInput } from '../v2-inputs.ts';
import { buildInferReply, planOutputs } from '../v2-outputs.ts';
import { parseInput } from '../validation.ts';

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

export async function v2InferenceRoutes(app: FastifyInstance, deps: HttpDeps): Promise<void> {
  const { service, config } = deps;
  // JSON or JSON + binary tensors, whatever Content-Type the client sends (tritonclient sets none).
  const bodyLimit = { bytes: config.MAX_BODY_BYTES, setting: 'MAX_BODY_BYTES' };
  useBodies(app, bodyLimit, 'raw');

  const infer = async (request: FastifyRequest, reply: FastifyReply) => {
    const { model, version } = request.edge as { model: string; version?: string };
    const meta = service.metadata(model, version);
    const received = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const raw = await decodeContentEncoding(received, request.headers['content-encoding'], bodyLimit);
    const { json, binary } = splitBody(raw, request.headers[INFERENCE_HEADER]);
    const body = parseInput(InferRequest, parseJson(json), 'body');
    const input = decodeInput(body, binary, meta, config.MAX_TENSOR_ELEMENTS);
    const plans = planOutputs(body, meta);
    const timeoutUs = body.parameters?.timeout;
    const options = requestOptions(request, {
      ...(version !== undefined ? { version } : {}),
      ...(timeoutUs !== undefined ? { timeoutMs: timeoutUs / 1000 } : {}),
      ...(body.parameters?.priority !== undefined ? { priority: body.parameters.priority } : {}),
    });
    const result = input.kind === 'images'
      ? await service.inferImages(model, input.images, options)
      : await service.inferTensor(model, { data: input.data, shape: input.shape, layout: input.layout }, options);
    const answer = buildInferReply(result, plans, body.id ?? request.id);
    if (!answer.binary) return answer.json;
    return reply.header(INFERENCE_HEADER, String(answer.headerLength)).type('application/octet-stream').send(answer.body);
  };

  const onRequest = resolveModel(deps);
  app.post('/v2/models/:model/infer', { onRequest, config: { inference: true, doc: inferDoc("Infer with the model's newest version", ModelParams) } }, infer);
  app.post('/v2/models/:model/versions/:version/infer', {
    onRequest, config: { inference: true, doc: inferDoc('Infer with one version of a model', ModelVersionParams) },
  }, infer);
}
