// ModelInferRequest / ModelInferResponse (protobuf, as tritonclient and KServe clients send them)
// ↔ the Open Inference Protocol model (../oip). Only what is gRPC's own is decided here: data in
// raw_input_contents (what tritonclient always sends) or in the typed contents field of the
// datatype, never both; outputs go back the way the inputs came (raw_output_contents for raw
// inputs, as Triton does); InferParameter's oneof becomes a plain value.
import { invalidInput } from '../../errors.ts';
import {
  float32ToLE,
  joinBytesElements,
  type InferRequest,
  type InferResponse,
  type ParameterValue,
  type Parameters,
  type TensorData,
} from '../oip/index.ts';
import type { InferParameter__Output } from './generated/inference/InferParameter.ts';
import type { InferTensorContents__Output } from './generated/inference/InferTensorContents.ts';
import type { ModelInferRequest__Output } from './generated/inference/ModelInferRequest.ts';
import type { ModelInferResponse } from './generated/inference/ModelInferResponse.ts';

/** The typed field that carries each datatype's elements. */
const TYPED_FIELD: Readonly<Record<string, keyof InferTensorContents__Output>> = { FP32: 'fp32_contents', UINT8: 'uint_contents', BYTES: 'bytes_contents' };
const ALL_TYPED_FIELDS = [
  'bool_contents', 'int_contents', 'int64_contents', 'uint_contents', 'uint64_contents', 'fp32_contents', 'fp64_contents', 'bytes_contents',
] as const;

/** Whether a contents message holds any element (an empty message counts as absent). */
function hasTypedContents(contents: InferTensorContents__Output | null): boolean {
  return contents !== null && ALL_TYPED_FIELDS.some((name) => (contents[name]?.length ?? 0) > 0);
}

function parameterValue(p: InferParameter__Output): ParameterValue | undefined {
  switch (p.parameter_choice) {
    case 'bool_param': return p.bool_param;
    case 'string_param': return p.string_param;
    case 'double_param': return p.double_param;
    // 64-bit integers arrive as decimal strings; beyond 2^53 they stop being exact, and every
    // integer parameter we read is range-checked far below that.
    case 'int64_param': return Number(p.int64_param);
    case 'uint64_param': return Number(p.uint64_param);
    default: return undefined;
  }
}

export function parametersOf(map: Record<string, InferParameter__Output>): Parameters {
  const out: Record<string, ParameterValue> = {};
  for (const [key, p] of Object.entries(map)) {
    const value = parameterValue(p);
    if (value !== undefined) out[key] = value;
  }
  return out;
}

function typedData(contents: InferTensorContents__Output | null, datatype: string, field: string): TensorData {
  const own = TYPED_FIELD[datatype];
  for (const name of ALL_TYPED_FIELDS) {
    if (name !== own && (contents?.[name]?.length ?? 0) > 0) {
      throw invalidInput(`${field}.${name}`, own ? `a ${datatype} tensor takes its elements in ${field}.${own}` : `${datatype} is not an input datatype of this model`);
    }
  }
  const values = own ? (contents?.[own] as readonly unknown[] | undefined) ?? [] : [];
  return { kind: 'values', values, field: own ? `${field}.${own}` : field };
}

export function toInferRequest(request: ModelInferRequest__Output): InferRequest {
  if (!request.model_name) throw invalidInput('model_name', 'required');
  const { inputs, raw_input_contents: raws } = request;
  const raw = raws.length > 0;
  if (raw && raws.length !== inputs.length) {
    throw invalidInput('raw_input_contents', `${raws.length} entries for ${inputs.length} input(s); send one per input, in order`);
  }
  return {
    modelName: request.model_name,
    modelVersion: request.model_version,
    id: request.id,
    parameters: parametersOf(request.parameters),
    inputs: inputs.map((input, i) => {
      const field = `inputs[${i}]`;
      if (raw && hasTypedContents(input.contents)) {
        throw invalidInput(`${field}.contents`, 'must be empty when raw_input_contents is used (the two ways of sending data cannot be mixed)');
      }
      const data: TensorData = raw
        ? { kind: 'raw', bytes: raws[i]!, field: `raw_input_contents[${i}]` }
        : typedData(input.contents, input.datatype, `${field}.contents`);
      return { name: input.name, datatype: input.datatype, shape: input.shape, parameters: parametersOf(input.parameters), data };
    }),
    outputs: request.outputs.map((o) => ({ name: o.name, parameters: parametersOf(o.parameters) })),
  };
}

/** Raw inputs get raw outputs (raw_output_contents, one entry per output), typed ones typed. */
export function toModelInferResponse(response: InferResponse, raw: boolean): ModelInferResponse {
  const outputs = response.outputs.map((o) => ({
    name: o.name,
    datatype: o.datatype,
    shape: o.shape,
    ...(raw ? {} : {
      contents: o.datatype === 'FP32'
        ? { fp32_contents: Array.from(o.data) }
        : { bytes_contents: o.data.map((e) => Buffer.from(e.buffer, e.byteOffset, e.byteLength)) },
    }),
  }));
  return {
    model_name: response.modelName,
    model_version: response.modelVersion,
    id: response.id,
    outputs,
    ...(raw ? { raw_output_contents: response.outputs.map((o) => (o.datatype === 'FP32' ? float32ToLE(o.data) : joinBytesElements(o.data))) } : {}),
  };
}
