// One Open Inference Protocol inference, transport-neutral: the request as HTTP or gRPC handed
// it over → the inference core → the output tensors each transport writes in its own way (JSON
// numbers or binary sections; typed contents or raw_output_contents).
//
// Outputs mirror the input: [N, classes] when the input had a batch dimension (FP32/UINT8
// [N,…] or any BYTES input), [classes] for one image sent without it. The classification
// extension turns an output into K strings per row, "score:index:label" with the score to 6
// decimals (Triton's C++ std::to_string), highest first.
import type { InferenceService, InferResult, RequestOptions } from '../../inference/index.ts';
import { softmax, topK } from '../../inference/index.ts';
import { decodeModelInput, planOutputs, schedulingParameters, type InferLimits, type InferRequest, type OutputPlan } from './infer-request.ts';
import { OUTPUT_LOGITS } from './model-metadata.ts';

export type OutputTensor =
  | { name: string; datatype: 'FP32'; shape: number[]; data: Float32Array; plan: OutputPlan }
  | { name: string; datatype: 'BYTES'; shape: number[]; data: Uint8Array[]; plan: OutputPlan };

export interface InferResponse {
  modelName: string;
  modelVersion: string;
  /** The request's id as sent ('' when none). */
  id: string;
  outputs: OutputTensor[];
}

/** The per-request options the transport edge makes: its signal and deadline, plus these. */
export interface RequestScope {
  requestOptions(extra: { version?: string; priority?: number; timeoutMs?: number }): RequestOptions;
}

export async function infer(service: InferenceService, request: InferRequest, scope: RequestScope, limits: InferLimits): Promise<InferResponse> {
  const version = request.modelVersion || undefined;
  // An unknown model or version is the first thing to report (NOT_FOUND), as Triton does.
  const model = service.describe(request.modelName, version);
  const { timeoutMs, priority } = schedulingParameters(request.parameters);
  const input = decodeModelInput(request, model, limits);
  const plans = planOutputs(request.outputs);
  const options = scope.requestOptions({
    ...(version !== undefined ? { version } : {}),
    ...(priority !== undefined ? { priority } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
  });
  const result = input.kind === 'images'
    ? await service.inferImages(request.modelName, input.images, options)
    : await service.inferTensor(request.modelName, { data: input.data, shape: input.shape, layout: input.layout }, options);
  return {
    modelName: result.model,
    modelVersion: result.version,
    id: request.id ?? '',
    outputs: plans.map((plan) => outputTensor(result, plan, input.batched)),
  };
}

function outputTensor(result: InferResult, plan: OutputPlan, batched: boolean): OutputTensor {
  const rows = plan.name === OUTPUT_LOGITS ? result.logits : result.logits.map(softmax);
  const batch = batched ? [rows.length] : [];
  if (plan.classification > 0) {
    const k = Math.min(plan.classification, result.labels.length);
    const data = rows.flatMap((row) => topK(row, k, result.labels).map((p) => Buffer.from(`${p.score.toFixed(6)}:${p.index}:${p.label}`)));
    return { name: plan.name, datatype: 'BYTES', shape: [...batch, k], data, plan };
  }
  const classes = result.labels.length;
  const data = new Float32Array(rows.length * classes);
  rows.forEach((row, i) => data.set(row, i * classes));
  return { name: plan.name, datatype: 'FP32', shape: [...batch, classes], data, plan };
}
