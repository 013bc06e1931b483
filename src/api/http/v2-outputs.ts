// Logits from the inference service → the requested Open Inference Protocol outputs: FP32
// `logits` / `probabilities` [N, classes], or with the classification extension a BYTES
// [N, K] tensor of "score:index:label" (Triton's format: the output's value, 6 decimals).
// Outputs marked binary go after the JSON header (binary data extension).
import { ServeError } from '../../errors.ts';
import { softmax, topK, type InferResult, type ModelMetadata } from '../../inference/index.ts';
import { bytesElementsToBuffer, composeBinaryResponse, float32ToBytes } from './binary-data.ts';
import type { InferRequest } from './schemas.ts';

export interface OutputPlan {
  name: string;
  binary: boolean;
  /** Top-K classes as BYTES; 0 = the plain FP32 tensor. */
  classification: number;
}

interface OutputTensor {
  name: string;
  datatype: 'FP32' | 'BYTES';
  shape: number[];
  parameters?: { binary_data_size: number };
  data?: number[] | string[];
}

export type InferReply =
  | { binary: false; json: Record<string, unknown> }
  | { binary: true; body: Buffer; headerLength: number };

export function planOutputs(request: InferRequest, meta: ModelMetadata): OutputPlan[] {
  const binaryByDefault = request.parameters?.binary_data_output === true;
  const known = meta.outputs.map((o) => o.name);
  if (!request.outputs || request.outputs.length === 0) {
    return known.map((name) => ({ name, binary: binaryByDefault, classification: 0 }));
  }
  const seen = new Set<string>();
  return request.outputs.map((output, i) => {
    if (!known.includes(output.name)) {
      throw new ServeError('INVALID_INPUT', `outputs[${i}].name: unknown output '${output.name.slice(0, 64)}'; the model has ${known.map((n) => `'${n}'`).join(', ')}`, {
        field: `outputs[${i}].name`,
      });
    }
    if (seen.has(output.name)) {
      throw new ServeError('INVALID_INPUT', `outputs[${i}].name: '${output.name}' is requested twice`, { field: `outputs[${i}].name` });
    }
    seen.add(output.name);
    return { name: output.name, binary: output.parameters?.binary_data ?? binaryByDefault, classification: output.parameters?.classification ?? 0 };
  });
}

function rows(result: InferResult, name: string): Float32Array[] {
  return name === 'probabilities' ? result.logits.map((row) => softmax(row)) : result.logits;
}

export function buildInferReply(result: InferResult, plans: readonly OutputPlan[], id: string): InferReply {
  const outputs: OutputTensor[] = [];
  const sections: Buffer[] = [];
  for (const plan of plans) {
    const values = rows(result, plan.name);
    const n = values.length;
    const classes = values[0]?.length ?? result.labels.length;
    let header: OutputTensor;
    let data: () => number[] | string[];
    let bytes: () => Buffer;
    if (plan.classification > 0) {
      const k = Math.min(plan.classification, classes);
      const strings = values.flatMap((row) => topK(row, k, result.labels).map((p) => `${p.score.toFixed(6)}:${p.index}:${p.label}`));
      header = { name: plan.name, datatype: 'BYTES', shape: [n, k] };
      data = () => strings;
      bytes = () => bytesElementsToBuffer(strings.map((s) => Buffer.from(s, 'utf8')));
    } else {
      const flat = new Float32Array(n * classes);
      values.forEach((row, i) => flat.set(row, i * classes));
      header = { name: plan.name, datatype: 'FP32', shape: [n, classes] };
      data = () => Array.from(flat);
      bytes = () => float32ToBytes(flat);
    }
    if (plan.binary) {
      const section = bytes();
      sections.push(section);
      outputs.push({ ...header, parameters: { binary_data_size: section.length } });
    } else {
      outputs.push({ ...header, data: data() });
    }
  }
  const json = { model_name: result.model, model_version: result.version, id, outputs };
  if (sections.length === 0) return { binary: false, json };
  return { binary: true, ...composeBinaryResponse(json, sections) };
}
