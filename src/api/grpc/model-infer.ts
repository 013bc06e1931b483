// inference.GRPCInferenceService/ModelInfer: Open Inference Protocol tensors in, logits or
// probabilities out, as tritonclient and KServe clients speak it.
//
// Inputs: exactly one, named as in ModelMetadata ('input'):
//   FP32 [N,H,W,C] or [H,W,C] (already normalised), UINT8 the same (raw pixels, normalised here),
//     NCHW with the input parameter layout="NCHW";
//   BYTES [N] or [N,1]: encoded images (JPEG, PNG, …), decoded and resized like Classify.
// Data comes either in raw_input_contents (what tritonclient always sends) or in the typed
// contents field of the datatype, never both. Outputs come back the same way the inputs came:
// raw_output_contents when the request used raw inputs (as Triton does), typed contents otherwise.
// Request parameters: timeout (µs; 0 = none) and priority (1 = highest; 0 = the model's default).
// Output parameter classification=K turns that output into BYTES "score:index:label" top-K rows.
import { ServeError } from '../../errors.ts';
import { INPUT_NAME, OUTPUT_LOGITS, OUTPUT_PROBABILITIES, softmax, topK, type InferResult } from '../../inference/index.ts';
import type { CallContext } from './call-context.ts';
import type { GrpcServerDeps } from './deps.ts';
import type { InferParameter__Output } from './generated/inference/InferParameter.ts';
import type { ModelInferRequest__Output } from './generated/inference/ModelInferRequest.ts';
import type { ModelInferResponse, _inference_ModelInferResponse_InferOutputTensor as OutputTensor } from './generated/inference/ModelInferResponse.ts';
import {
  bytesContents,
  decodeRaw,
  decodeTyped,
  elementCount,
  encodeBytesElements,
  float32ToLE,
  fp32Contents,
  hasTypedContents,
  invalid,
  parseDatatype,
  parseShape,
  type DecodedTensor,
} from './tensor-codec.ts';

const OUTPUT_NAMES = [OUTPUT_LOGITS, OUTPUT_PROBABILITIES] as const;
type OutputName = (typeof OUTPUT_NAMES)[number];
type Layout = 'NHWC' | 'NCHW';

interface RequestedOutput {
  name: OutputName;
  /** Top-K as "score:index:label" strings instead of the scores. */
  classification?: number;
}

export function modelInfer(deps: GrpcServerDeps) {
  return async (request: ModelInferRequest__Output, ctx: CallContext): Promise<ModelInferResponse> => {
    if (deps.lifecycle.isDraining()) throw new ServeError('SHUTTING_DOWN', 'the server is draining and accepts no new requests');
    if (!request.model_name) throw invalid('model_name', 'required');
    ctx.model = request.model_name;
    // An unknown model or version is the first thing to report (NOT_FOUND), as Triton does.
    deps.service.metadata(request.model_name, request.model_version || undefined);
    const { timeoutUs, priority } = schedulingParameters(request.parameters);
    const input = decodeInput(request, deps.config.MAX_IMAGES_PER_REQUEST, deps.config.MAX_TENSOR_ELEMENTS);
    const outputs = requestedOutputs(request);

    const options = ctx.requestOptions({
      ...(request.model_version ? { version: request.model_version } : {}),
      ...(priority !== undefined ? { priority } : {}),
      ...(timeoutUs !== undefined ? { deadline: performance.now() + timeoutUs / 1000 } : {}),
    });
    let result: InferResult;
    let batched: boolean;
    if (input.tensor.datatype === 'BYTES') {
      result = await deps.service.inferImages(request.model_name, input.tensor.elements, options);
      batched = true;
    } else {
      const { data, shape } = input.tensor;
      result = await deps.service.inferTensor(request.model_name, { data, shape, layout: input.layout }, options);
      batched = shape.length === 4;
    }
    return buildResponse(request, result, outputs, batched, input.raw);
  };
}

interface DecodedInput {
  tensor: DecodedTensor;
  layout: Layout;
  /** The data came in raw_input_contents (and outputs go back in raw_output_contents). */
  raw: boolean;
}

function decodeInput(request: ModelInferRequest__Output, maxImages: number, maxElements: number): DecodedInput {
  const { inputs, raw_input_contents: raws } = request;
  if (inputs.length !== 1) throw invalid('inputs', `the model takes exactly one input ('${INPUT_NAME}'), got ${inputs.length}`);
  const raw = raws.length > 0;
  if (raw && raws.length !== inputs.length) {
    throw invalid('raw_input_contents', `${raws.length} entries for ${inputs.length} input(s); send one per input, in order`);
  }
  const input = inputs[0]!;
  const field = 'inputs[0]';
  if (input.name !== INPUT_NAME) throw invalid(`${field}.name`, `unknown input '${input.name.slice(0, 64)}'; the model's input is '${INPUT_NAME}'`);
  const datatype = parseDatatype(input.datatype, `${field}.datatype`);
  const shape = parseShape(input.shape, `${field}.shape`);
  if (elementCount(shape) > BigInt(maxElements)) {
    throw new ServeError('LIMIT_EXCEEDED', `${field}.shape: [${shape.join(', ')}] is ${elementCount(shape)} elements, more than MAX_TENSOR_ELEMENTS ${maxElements}`, {
      field: `${field}.shape`, limit: 'MAX_TENSOR_ELEMENTS', max: maxElements,
    });
  }
  if (datatype === 'BYTES' && !(shape.length === 1 || (shape.length === 2 && shape[1] === 1))) {
    throw invalid(`${field}.shape`, `a BYTES input holds encoded images: [N] or [N, 1], got [${shape.join(', ')}]`);
  }
  if (datatype === 'BYTES' && elementCount(shape) > BigInt(maxImages)) {
    throw new ServeError('LIMIT_EXCEEDED', `${field}.shape: ${elementCount(shape)} images exceed MAX_IMAGES_PER_REQUEST ${maxImages}`, {
      field: `${field}.shape`, limit: 'MAX_IMAGES_PER_REQUEST', max: maxImages,
    });
  }
  if (raw && hasTypedContents(input.contents)) {
    throw invalid(`${field}.contents`, 'must be empty when raw_input_contents is used (the two ways of sending data cannot be mixed)');
  }
  const tensor = raw
    ? decodeRaw(datatype, shape, raws[0]!, 'raw_input_contents[0]')
    : decodeTyped(datatype, shape, input.contents, `${field}.contents`);
  return { tensor, layout: layoutOf(input.parameters, field), raw };
}

function layoutOf(parameters: Record<string, InferParameter__Output>, field: string): Layout {
  const p = parameters.layout;
  if (p === undefined) return 'NHWC';
  const value = p.parameter_choice === 'string_param' ? p.string_param?.toUpperCase() : undefined;
  if (value === 'NHWC' || value === 'NCHW') return value;
  throw invalid(`${field}.parameters.layout`, `must be the string_param 'NHWC' or 'NCHW'`);
}

/** An int64/uint64 parameter as a number within 0…max (decimal strings on our wire). */
function integerParameter(p: InferParameter__Output, field: string, max: number): number {
  const text = p.parameter_choice === 'int64_param' ? p.int64_param : p.parameter_choice === 'uint64_param' ? p.uint64_param : undefined;
  if (text === undefined) throw invalid(field, 'must be an int64_param or uint64_param');
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0 || n > max) throw invalid(field, `${text} is outside 0…${max}`);
  return n;
}

/** Triton's scheduling parameters; others (custom or for other servers) are ignored. */
function schedulingParameters(parameters: Record<string, InferParameter__Output>): { timeoutUs?: number; priority?: number } {
  const out: { timeoutUs?: number; priority?: number } = {};
  if (parameters.timeout) {
    // A day in µs: longer is "no deadline" in practice, and keeps the arithmetic exact.
    const us = integerParameter(parameters.timeout, 'parameters.timeout', 86_400_000_000);
    if (us > 0) out.timeoutUs = us;
  }
  if (parameters.priority) {
    const priority = integerParameter(parameters.priority, 'parameters.priority', 1_000_000);
    if (priority > 0) out.priority = priority;
  }
  return out;
}

function requestedOutputs(request: ModelInferRequest__Output): RequestedOutput[] {
  if (request.outputs.length === 0) return OUTPUT_NAMES.map((name) => ({ name }));
  const seen = new Set<string>();
  return request.outputs.map((o, i) => {
    const field = `outputs[${i}]`;
    if (!(OUTPUT_NAMES as readonly string[]).includes(o.name)) {
      throw invalid(`${field}.name`, `unknown output '${o.name.slice(0, 64)}'; the model's outputs are ${OUTPUT_NAMES.map((n) => `'${n}'`).join(', ')}`);
    }
    if (seen.has(o.name)) throw invalid(`${field}.name`, `'${o.name}' is requested twice`);
    seen.add(o.name);
    const k = o.parameters.classification;
    if (k === undefined) return { name: o.name as OutputName };
    const classification = integerParameter(k, `${field}.parameters.classification`, 1_000_000);
    if (classification < 1) throw invalid(`${field}.parameters.classification`, 'must be at least 1');
    return { name: o.name as OutputName, classification };
  });
}

function buildResponse(
  request: ModelInferRequest__Output,
  result: InferResult,
  outputs: readonly RequestedOutput[],
  batched: boolean,
  raw: boolean,
): ModelInferResponse {
  const classes = result.labels.length;
  const rows = (name: OutputName): Float32Array[] => (name === OUTPUT_LOGITS ? result.logits : result.logits.map(softmax));
  const tensors: OutputTensor[] = [];
  const rawContents: Buffer[] = [];
  for (const output of outputs) {
    const values = rows(output.name);
    if (output.classification !== undefined) {
      // Triton's classification extension: per row, the top K as "<score>:<index>:<label>" with
      // the score printed to 6 decimals (C++ std::to_string), highest first.
      const k = Math.min(output.classification, classes);
      const strings = values.flatMap((row) => topK(row, k, result.labels).map((p) => Buffer.from(`${p.score.toFixed(6)}:${p.index}:${p.label}`)));
      const shape = batched ? [values.length, k] : [k];
      tensors.push({ name: output.name, datatype: 'BYTES', shape, ...(raw ? {} : { contents: bytesContents(strings) }) });
      if (raw) rawContents.push(encodeBytesElements(strings));
    } else {
      const flat = new Float32Array(values.length * classes);
      values.forEach((row, i) => flat.set(row, i * classes));
      const shape = batched ? [values.length, classes] : [classes];
      tensors.push({ name: output.name, datatype: 'FP32', shape, ...(raw ? {} : { contents: fp32Contents(flat) }) });
      if (raw) rawContents.push(float32ToLE(flat));
    }
  }
  return {
    model_name: result.model,
    model_version: result.version,
    id: request.id,
    outputs: tensors,
    ...(raw ? { raw_output_contents: rawContents } : {}),
  };
}
