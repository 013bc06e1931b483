// An Open Inference Protocol inference request as both transports hand it over, and its
// meaning for our models: exactly one input, `input`, either decoded pixels — FP32 (already
// normalised) or UINT8 (raw 0…255, normalised here), [N,H,W,C] or [N,C,H,W] or one image without
// N — or encoded images (BYTES [N] or [N,1]); outputs `logits` and/or `probabilities`, each
// optionally as the classification extension's top-K strings; Triton's scheduling parameters
// `timeout` (µs) and `priority`.
//
// One layout rule for both transports: the layout is read from the shape (NHWC if the trailing
// dimensions are the model's H,W,C; NCHW if they are C,H,W). An input parameter `layout`
// ('NHWC' | 'NCHW') may state it, and must then agree with the shape; it only decides when both
// readings fit (a model whose H, W and C are equal).
import { invalidInput, ServeError } from '../../errors.ts';
import type { ModelDescription, TensorLayout } from '../../inference/index.ts';
import { INPUT_NAME, OUTPUT_NAMES, type OutputName } from './model-metadata.ts';
import { decodeTensor, elementCount, fmtShape, parseDatatype, parseShape, tooManyElements, type TensorData } from './tensor-data.ts';

/** A parameter value as either wire carries it (gRPC's int64, uint64 and double become numbers). */
export type ParameterValue = string | number | boolean;
export type Parameters = Readonly<Record<string, ParameterValue>>;

export interface InferInputTensor {
  name: string;
  datatype: string;
  shape: readonly (number | string)[];
  parameters: Parameters;
  data: TensorData;
}

export interface RequestedOutput {
  name: string;
  parameters: Parameters;
}

export interface InferRequest {
  modelName: string;
  /** '' or undefined: the newest version. */
  modelVersion?: string;
  id?: string;
  parameters: Parameters;
  inputs: readonly InferInputTensor[];
  outputs: readonly RequestedOutput[];
}

export interface InferLimits {
  maxTensorElements: number;
  maxImagesPerRequest: number;
}

/** What the inference core runs, and whether the answer keeps a batch dimension. */
export type ModelInput =
  | { kind: 'tensor'; data: Float32Array | Uint8Array; shape: number[]; layout: TensorLayout; batched: boolean }
  | { kind: 'images'; images: Uint8Array[]; batched: true };

export interface OutputPlan {
  name: OutputName;
  /** Top-K as "score:index:label" strings instead of the scores; 0 = the scores. */
  classification: number;
  /** The output's own parameters (a transport reads its own, e.g. HTTP's binary_data). */
  parameters: Parameters;
}

export function decodeModelInput(request: InferRequest, model: ModelDescription, limits: InferLimits): ModelInput {
  const { inputs } = request;
  if (inputs.length !== 1) throw invalidInput('inputs', `the model takes exactly one input, '${INPUT_NAME}'; got ${inputs.length}`);
  const input = inputs[0]!;
  const at = 'inputs[0]';
  if (input.name !== INPUT_NAME) throw invalidInput(`${at}.name`, `unknown input '${input.name.slice(0, 64)}'; the model's input is '${INPUT_NAME}'`);
  const datatype = parseDatatype(input.datatype, `${at}.datatype`);
  const shape = parseShape(input.shape, `${at}.shape`);
  // Before anything is allocated for it: the shape alone must not make the server reserve memory.
  if (elementCount(shape) > BigInt(limits.maxTensorElements)) throw tooManyElements(`${at}.shape`, shape, limits.maxTensorElements);
  if (datatype === 'BYTES' && !(shape.length === 1 || (shape.length === 2 && shape[1] === 1))) {
    throw invalidInput(`${at}.shape`, `a BYTES input holds encoded images: [N] or [N, 1], got ${fmtShape(shape)}`);
  }
  const layout = datatype === 'BYTES' ? undefined : layoutOf(shape, input.parameters, model, at);
  const images = datatype === 'BYTES' || shape.length === 4 ? shape[0]! : 1;
  if (images > limits.maxImagesPerRequest) {
    throw new ServeError('LIMIT_EXCEEDED', `${at}.shape: ${images} images exceed MAX_IMAGES_PER_REQUEST ${limits.maxImagesPerRequest}`, {
      field: `${at}.shape`, limit: 'MAX_IMAGES_PER_REQUEST', max: limits.maxImagesPerRequest,
    });
  }
  const tensor = decodeTensor(datatype, shape, input.data);
  if (tensor.datatype === 'BYTES') return { kind: 'images', images: tensor.elements, batched: true };
  return { kind: 'tensor', data: tensor.data, shape, layout: layout!, batched: shape.length === 4 };
}

function layoutOf(shape: readonly number[], parameters: Parameters, model: ModelDescription, at: string): TensorLayout {
  const { height, width, channels } = model.input;
  const nhwc = [height, width, channels];
  const nchw = [channels, height, width];
  const dims = shape.length === 4 ? shape.slice(1) : shape.length === 3 ? shape : undefined;
  const is = (expected: number[]) => dims !== undefined && dims.every((d, i) => d === expected[i]);
  const stated = parameters.layout;
  if (stated !== undefined) {
    const layout = typeof stated === 'string' ? stated.toUpperCase() : undefined;
    if (layout !== 'NHWC' && layout !== 'NCHW') throw invalidInput(`${at}.parameters.layout`, "must be the string 'NHWC' or 'NCHW'");
    if (!is(layout === 'NHWC' ? nhwc : nchw)) {
      throw invalidInput(`${at}.shape`, `${fmtShape(shape)} is not ${fmtShape([-1, ...(layout === 'NHWC' ? nhwc : nchw)])}, the model's input in the stated layout ${layout}`);
    }
    return layout;
  }
  if (is(nhwc)) return 'NHWC';
  if (is(nchw)) return 'NCHW';
  throw invalidInput(`${at}.shape`, `expected ${fmtShape([-1, ...nhwc])} (NHWC) or ${fmtShape([-1, ...nchw])} (NCHW), got ${fmtShape(shape)}`);
}

/** An integer parameter within 0…max. */
export function integerParameter(value: ParameterValue, field: string, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) {
    throw invalidInput(field, `${JSON.stringify(value).slice(0, 24)} is not an integer in 0…${max}`);
  }
  return value;
}

/** A day in µs: a longer timeout is "none" in practice, and keeps the arithmetic exact. */
const MAX_TIMEOUT_US = 86_400_000_000;

/** Triton's scheduling parameters; other parameters (custom, or for other servers) are ignored. */
export function schedulingParameters(parameters: Parameters): { timeoutMs?: number; priority?: number } {
  const out: { timeoutMs?: number; priority?: number } = {};
  if (parameters.timeout !== undefined) {
    const us = integerParameter(parameters.timeout, 'parameters.timeout', MAX_TIMEOUT_US);
    if (us > 0) out.timeoutMs = us / 1000;
  }
  if (parameters.priority !== undefined) {
    const priority = integerParameter(parameters.priority, 'parameters.priority', 1_000_000);
    if (priority > 0) out.priority = priority;
  }
  return out;
}

/** The outputs to return: those requested, in order, or both when none is named. */
export function planOutputs(requested: readonly RequestedOutput[]): OutputPlan[] {
  if (requested.length === 0) return OUTPUT_NAMES.map((name) => ({ name, classification: 0, parameters: {} }));
  const seen = new Set<string>();
  return requested.map((output, i) => {
    const field = `outputs[${i}]`;
    if (!(OUTPUT_NAMES as readonly string[]).includes(output.name)) {
      throw invalidInput(`${field}.name`, `unknown output '${output.name.slice(0, 64)}'; the model's outputs are ${OUTPUT_NAMES.map((n) => `'${n}'`).join(', ')}`);
    }
    if (seen.has(output.name)) throw invalidInput(`${field}.name`, `'${output.name}' is requested twice`);
    seen.add(output.name);
    const k = output.parameters.classification;
    const classification = k === undefined ? 0 : integerParameter(k, `${field}.parameters.classification`, 1_000_000);
    return { name: output.name as OutputName, classification, parameters: output.parameters };
  });
}
