// gRPC cases of the bad-input corpus that are about the protocol rather than the image:
// ModelInfer tensors (datatypes, shapes, raw and typed contents, parameters, outputs), model
// references, undecodable request messages and messages above the size limit.
import { status } from '@grpc/grpc-js';
import { seededRandom } from '../helpers/random.ts';
import { bytesElements, float32Le, LIMITS, MODELS, type GrpcCase, type GrpcExpect } from './cases.ts';

const PIXELS = 16 * 16 * 3;

const invalid = (message: RegExp): GrpcExpect => ({ status: status.INVALID_ARGUMENT, code: 'INVALID_INPUT', message });
const limit = (message: RegExp): GrpcExpect => ({ status: status.INVALID_ARGUMENT, code: 'LIMIT_EXCEEDED', message });
const notFound = (message?: RegExp): GrpcExpect => ({ status: status.NOT_FOUND, code: 'MODEL_NOT_FOUND', ...(message ? { message } : {}) });
const classified = (images: number): GrpcExpect => ({ status: status.OK, code: null, images });

const pixels = (n = 1): number[] => Array.from({ length: n * PIXELS }, (_, i) => Math.cos(i / 11));

export function grpcProtocolCases(seed: number, good: Buffer): GrpcCase[] {
  const random = seededRandom(seed ^ 0x69c);
  const cases: GrpcCase[] = [];
  const add = (category: string, name: string, c: Omit<GrpcCase, 'kind' | 'name' | 'category'>): void => {
    cases.push({ kind: 'grpc', category, name: `${category}/grpc-${name}`, ...c });
  };
  /** ModelInfer of the rgb model with one FP32 input of `shape` and raw `bytes`. */
  const infer = (request: Record<string, unknown>, expect: GrpcExpect): Omit<GrpcCase, 'kind' | 'name' | 'category'> =>
    ({ service: 'inference', method: 'ModelInfer', request: { model_name: MODELS.rgb, ...request }, expect });
  const rawFp32 = (shape: (number | string)[], bytes: Buffer, extra: Record<string, unknown> = {}) =>
    ({ inputs: [{ name: 'input', datatype: 'FP32', shape, ...extra }], raw_input_contents: [bytes] });
  const tensor = float32Le(pixels());

  // ---- datatypes, names and counts of inputs ----------------------------------------------------
  for (const datatype of ['FP64', 'INT32', 'BOOL', 'FP16', 'UINT16', 'fp32', '']) {
    add('v2-tensor', `datatype-${datatype || 'empty'}`, infer({ inputs: [{ name: 'input', datatype, shape: [1, 16, 16, 3] }], raw_input_contents: [tensor] }, invalid(/^inputs\[0\]\.datatype: /)));
  }
  add('v2-tensor', 'no-inputs', infer({ inputs: [] }, invalid(/^inputs: /)));
  add('v2-tensor', 'two-inputs', infer({ inputs: [rawFp32([1, 16, 16, 3], tensor).inputs[0], rawFp32([1, 16, 16, 3], tensor).inputs[0]], raw_input_contents: [tensor, tensor] }, invalid(/^inputs: /)));
  add('v2-tensor', 'input-named-data_0', infer({ inputs: [{ name: 'data_0', datatype: 'FP32', shape: [1, 16, 16, 3] }], raw_input_contents: [tensor] }, invalid(/^inputs\[0\]\.name: /)));
  add('v2-tensor', 'two-raw-contents', infer({ ...rawFp32([1, 16, 16, 3], tensor), raw_input_contents: [tensor, tensor] }, invalid(/^raw_input_contents: 2 entries for 1 input/)));
  add('v2-tensor', 'raw-and-typed', infer({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 16, 16, 3], contents: { fp32_contents: pixels() } }], raw_input_contents: [tensor] },
    invalid(/^inputs\[0\]\.contents: must be empty when raw_input_contents is used/)));
  add('v2-tensor', 'typed-wrong-field', infer({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 16, 16, 3], contents: { int_contents: new Array(PIXELS).fill(1) } }] },
    invalid(/^inputs\[0\]\.contents\.int_contents: a FP32 tensor takes its elements in inputs\[0\]\.contents\.fp32_contents/)));
  add('v2-tensor', 'typed-none', infer({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 16, 16, 3] }] }, invalid(/^inputs\[0\]\.contents\.fp32_contents: shape \[1, 16, 16, 3\] needs 768 elements, got 0/)));
  add('v2-tensor', 'typed-one-short', infer({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 16, 16, 3], contents: { fp32_contents: pixels().slice(1) } }] },
    invalid(/^inputs\[0\]\.contents\.fp32_contents: shape \[1, 16, 16, 3\] needs 768 elements, got 767/)));
  add('v2-tensor', 'uint8-typed-256', infer({ inputs: [{ name: 'input', datatype: 'UINT8', shape: [1, 16, 16, 3], contents: { uint_contents: [...new Array(PIXELS - 1).fill(1), 256] } }] },
    invalid(/^inputs\[0\]\.contents\.uint_contents\[767\]: expected an integer in 0…255, got 256/)));
  add('v2-tensor', 'uint8-typed-valid', infer({ inputs: [{ name: 'input', datatype: 'UINT8', shape: [1, 16, 16, 3], contents: { uint_contents: new Array(PIXELS).fill(200) } }] }, classified(1)));
  for (const delta of [-4, -1, 1, 4]) {
    add('v2-tensor', `raw-bytes-${delta > 0 ? 'plus' : 'minus'}-${Math.abs(delta)}`, infer(rawFp32([1, 16, 16, 3], Buffer.alloc(tensor.length + delta)),
      invalid(new RegExp(`^raw_input_contents\\[0\\]: shape \\[1, 16, 16, 3\\] of FP32 needs 3072 bytes, got ${tensor.length + delta}`))));
  }
  const badShapes: [string, number[]][] = [['4-channels', [1, 16, 16, 4]], ['15-high', [1, 15, 16, 3]], ['2d', [16, 48]], ['5d', [1, 1, 16, 16, 3]]];
  for (const [name, shape] of badShapes) {
    add('v2-tensor', `shape-${name}`, infer(rawFp32(shape, Buffer.alloc(shape.reduce((a, b) => a * b, 1) * 4)), invalid(/^inputs\[0\]\.shape: expected \[-1, 16, 16, 3\] \(NHWC\) or \[-1, 3, 16, 16\] \(NCHW\), got /)));
  }
  add('v2-tensor', 'batch-of-zero', infer(rawFp32([0, 16, 16, 3], Buffer.alloc(0)), invalid(/^input: the batch is empty/)));
  add('v2-tensor', 'batch-of-nine', infer(rawFp32([9, 16, 16, 3], float32Le(pixels(9))), limit(/^inputs\[0\]\.shape: 9 images exceed MAX_IMAGES_PER_REQUEST 8/)));
  add('v2-tensor', 'nchw-with-layout', infer(rawFp32([1, 3, 16, 16], tensor, { parameters: { layout: { string_param: 'NCHW' } } }), classified(1)));
  // One layout rule for both transports: the shape says NCHW (tritonclient cannot set the parameter).
  add('v2-tensor', 'nchw-without-layout', infer(rawFp32([1, 3, 16, 16], tensor), classified(1)));
  add('v2-tensor', 'nchw-layout-disagrees', infer(rawFp32([1, 3, 16, 16], tensor, { parameters: { layout: { string_param: 'NHWC' } } }), invalid(/^inputs\[0\]\.shape: \[1, 3, 16, 16\] is not \[-1, 16, 16, 3\], the model's input in the stated layout NHWC/)));
  add('v2-tensor', 'layout-unknown', infer(rawFp32([1, 16, 16, 3], tensor, { parameters: { layout: { string_param: 'NWHC' } } }), invalid(/^inputs\[0\]\.parameters\.layout: /)));
  add('v2-tensor', 'layout-int', infer(rawFp32([1, 16, 16, 3], tensor, { parameters: { layout: { int64_param: 1 } } }), invalid(/^inputs\[0\]\.parameters\.layout: /)));
  add('v2-tensor', 'bytes-shape-2x2', infer({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [2, 2] }], raw_input_contents: [bytesElements([good, good, good, good])] },
    invalid(/^inputs\[0\]\.shape: a BYTES input holds encoded images/)));
  add('v2-tensor', 'bytes-shape-0', infer({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [0] }], raw_input_contents: [Buffer.alloc(0)] }, invalid(/^images: at least one image/)));
  add('v2-tensor', 'bytes-nine', infer({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [9] }], raw_input_contents: [bytesElements(Array.from({ length: 9 }, () => good))] },
    limit(/^inputs\[0\]\.shape: 9 images exceed MAX_IMAGES_PER_REQUEST 8/)));
  const overflow = Buffer.alloc(4);
  overflow.writeUInt32LE(0xffffffff);
  add('v2-tensor', 'bytes-length-overflow', infer({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [1] }], raw_input_contents: [Buffer.concat([overflow, good])] },
    invalid(/^raw_input_contents\[0\]: element 0 declares 4294967295 bytes/)));
  add('v2-tensor', 'bytes-truncated-prefix', infer({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [2] }], raw_input_contents: [Buffer.concat([bytesElements([good]), Buffer.from([3, 0])])] },
    invalid(/^raw_input_contents\[0\]: element 1 is truncated/)));
  add('v2-tensor', 'bytes-extra-element', infer({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [1] }], raw_input_contents: [bytesElements([good, good])] },
    invalid(/^raw_input_contents\[0\]: holds more than the 1 elements/)));
  add('v2-tensor', 'bytes-typed-wrong-field', infer({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [1], contents: { fp32_contents: [1] } }] }, invalid(/^inputs\[0\]\.contents\.fp32_contents: /)));

  // ---- parameters and outputs ----------------------------------------------------------------
  const parameters: [string, Record<string, unknown>][] = [
    ['timeout-negative', { timeout: { int64_param: -1 } }], ['timeout-string', { timeout: { string_param: '10' } }], ['timeout-bool', { timeout: { bool_param: true } }],
    ['timeout-over-a-day', { timeout: { int64_param: '86400000001' } }], ['priority-huge', { priority: { uint64_param: '2000000' } }],
    ['priority-negative', { priority: { int64_param: -3 } }], ['priority-double', { priority: { double_param: 1.5 } }],
  ];
  for (const [name, p] of parameters) add('v2-tensor', `parameters-${name}`, infer({ ...rawFp32([1, 16, 16, 3], tensor), parameters: p }, invalid(/^parameters\.(timeout|priority): /)));
  // classification 0 means the scores, as on HTTP.
  add('v2-tensor', 'outputs-classification-zero', infer({ ...rawFp32([1, 16, 16, 3], tensor), outputs: [{ name: 'logits', parameters: { classification: { int64_param: 0 } } }] }, classified(1)));
  add('v2-tensor', 'parameters-unknown-ignored', infer({ ...rawFp32([1, 16, 16, 3], tensor), parameters: { sequence_id: { int64_param: 7 } } }, classified(1)));
  const outputs: [string, unknown[]][] = [
    ['unknown', [{ name: 'fc6_1' }]], ['twice', [{ name: 'logits' }, { name: 'logits' }]], ['classification-negative', [{ name: 'logits', parameters: { classification: { int64_param: -1 } } }]],
    ['classification-string', [{ name: 'logits', parameters: { classification: { string_param: '3' } } }]], ['nameless', [{}]],
    ['classification-huge', [{ name: 'logits', parameters: { classification: { int64_param: '9223372036854775807' } } }]],
  ];
  for (const [name, o] of outputs) add('v2-tensor', `outputs-${name}`, infer({ ...rawFp32([1, 16, 16, 3], tensor), outputs: o }, invalid(/^outputs\[\d\]\.(name|parameters\.classification): /)));

  // ---- dimensions, NaN and infinities ----------------------------------------------------------
  const dims: [string, (number | string)[]][] = [
    ['negative', ['-1', 16, 16, 3]], ['int64-max', ['9223372036854775807', 16, 16, 3]], ['2^31', [2 ** 31, 16, 16, 3]], ['int64-min', ['-9223372036854775808', 16, 16, 3]],
    ['nine-dims', [1, 1, 1, 1, 1, 1, 16, 16, 3]],
  ];
  for (const [name, shape] of dims) add('dims', `fp32-${name}`, infer(rawFp32(shape, tensor), invalid(/^inputs\[0\]\.shape(\[\d\])?: /)));
  // Allowed dimensions whose product is enormous: refused from the shape (MAX_TENSOR_ELEMENTS)
  // before anything is allocated; below that limit, by the byte or element count.
  const tooMany = limit(/^inputs\[0\]\.shape: .* more than MAX_TENSOR_ELEMENTS/);
  for (const n of [2 ** 31 - 1, 1_000_000, 20_000]) {
    const huge = n * PIXELS > LIMITS.MAX_TENSOR_ELEMENTS;
    // Below MAX_TENSOR_ELEMENTS, the image count refuses them before their data is looked at.
    const tooManyImages = limit(/^inputs\[0\]\.shape: \d+ images exceed MAX_IMAGES_PER_REQUEST/);
    add('dims', `fp32-batch-${n}-raw`, infer(rawFp32([n, 16, 16, 3], tensor), huge ? tooMany : tooManyImages));
    add('dims', `fp32-batch-${n}-typed`, infer({ inputs: [{ name: 'input', datatype: 'FP32', shape: [n, 16, 16, 3], contents: { fp32_contents: [1] } }] },
      huge ? tooMany : tooManyImages));
    add('dims', `uint8-batch-${n}-raw`, infer({ inputs: [{ name: 'input', datatype: 'UINT8', shape: [n, 16, 16, 3] }], raw_input_contents: [Buffer.alloc(PIXELS)] },
      huge ? tooMany : tooManyImages));
    add('dims', `bytes-batch-${n}`, infer({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [n] }], raw_input_contents: [bytesElements([good])] },
      n > LIMITS.MAX_TENSOR_ELEMENTS ? tooMany : limit(/MAX_IMAGES_PER_REQUEST/)));
  }
  add('dims', 'product-past-2^53', infer(rawFp32([2 ** 31 - 1, 2 ** 31 - 1, 2 ** 31 - 1], tensor), tooMany));
  for (const [name, value] of [['nan', NaN], ['inf', Infinity], ['minus-inf', -Infinity]] as const) {
    for (const at of [0, PIXELS - 1]) {
      const data = pixels();
      data[at] = value;
      const expect = invalid(new RegExp(`^input: element ${at} \\(image 0\\) is ${String(value)}`));
      add('non-finite', `raw-${name}-at-${at}`, infer(rawFp32([1, 16, 16, 3], float32Le(data)), expect));
      add('non-finite', `typed-${name}-at-${at}`, infer({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 16, 16, 3], contents: { fp32_contents: data } }] }, expect));
    }
  }
  // A NaN with a payload and a signalling NaN are NaN all the same.
  const payloadNan = Buffer.from(tensor);
  payloadNan.writeUInt32LE(0x7fa00001, 400);
  add('non-finite', 'raw-signalling-nan', infer(rawFp32([1, 16, 16, 3], payloadNan), invalid(/^input: element 100 \(image 0\) is NaN/)));

  // ---- model references ------------------------------------------------------------------------
  const fp32 = rawFp32([1, 16, 16, 3], tensor);
  add('unknown-model', 'infer-unknown', infer({ ...fp32, model_name: 'nope' }, notFound(/no model 'nope'/)));
  add('unknown-model', 'infer-unknown-version', infer({ ...fp32, model_version: '9' }, notFound(/no version 9/)));
  for (const [name, version] of [['word', 'latest'], ['zero', '0'], ['negative', '-1']]) {
    add('unknown-model', `infer-version-${name}`, infer({ ...fp32, model_version: version }, invalid(/^version: /)));
  }
  for (const [name, model] of [['empty', ''], ['dot-dot', '..'], ['slash', 'a/b'], ['129-chars', 'm'.repeat(129)], ['nul', 'a\u0000b']]) {
    const expect = name === 'empty' ? invalid(/^model_name: required/) : invalid(/^model: /);
    add('unknown-model', `infer-name-${name}`, infer({ ...fp32, model_name: model }, expect));
    add('unknown-model', `metadata-name-${name}`, { service: 'inference', method: 'ModelMetadata', request: { name: model }, expect: name === 'empty' ? invalid(/^name: required/) : invalid(/^model: /) });
  }
  add('unknown-model', 'classify-unknown', { service: 'classifier', method: 'Classify', request: { model_name: 'nope', images: [good] }, expect: notFound() });
  add('unknown-model', 'classify-unknown-version', { service: 'classifier', method: 'Classify', request: { model_name: MODELS.rgb, model_version: '3', images: [good] }, expect: notFound(/no version 3/) });
  add('unknown-model', 'classify-top-k-negative', { service: 'classifier', method: 'Classify', request: { model_name: MODELS.rgb, images: [good], top_k: -1 }, expect: invalid(/^top_k: /) });
  add('unknown-model', 'classify-no-images', { service: 'classifier', method: 'Classify', request: { model_name: MODELS.rgb, images: [] }, expect: invalid(/^images: at least one image/) });
  add('unknown-model', 'classify-nine-images', { service: 'classifier', method: 'Classify', request: { model_name: MODELS.rgb, images: Array.from({ length: 9 }, () => good) }, expect: limit(/^images: 9 images exceed/) });
  add('unknown-model', 'metadata-unknown', { service: 'inference', method: 'ModelMetadata', request: { name: 'nope' }, expect: notFound() });
  add('unknown-model', 'metadata-unknown-version', { service: 'inference', method: 'ModelMetadata', request: { name: MODELS.rgb, version: '7' }, expect: notFound() });
  // Readiness of a model that does not exist is an answer, not an error (the doc says so).
  add('unknown-model', 'ready-unknown', { service: 'inference', method: 'ModelReady', request: { name: 'nope' }, expect: notFound(/no model 'nope'/) });
  add('unknown-model', 'ready-empty-name', { service: 'inference', method: 'ModelReady', request: { name: '' }, expect: invalid(/^name: required/) });
  add('unknown-model', 'health-unknown-service', { service: 'health', method: 'Check', request: { service: 'nope' }, expect: { status: status.NOT_FOUND, code: null } });

  // ---- request messages that are not protobuf, or too large ----------------------------------------
  // Bytes protobufjs cannot decode: INVALID_ARGUMENT naming the message type (grpc-js alone
  // would answer INTERNAL; see UndecodableRequest in src/api/grpc/proto.ts).
  const undecodable: [string, Buffer][] = [
    ['varint-unterminated', Buffer.from([0x10, 0xff, 0xff, 0xff])], ['group-end-without-start', Buffer.from([0x0c])], ['wire-type-6', Buffer.from([0x7e])],
    ['tag-without-value', Buffer.from([0x0e])], ['wire-type-7', Buffer.from([0x7f])],
    ['noise-then-bad-tag', Buffer.concat([Buffer.from([0x0a, 0x03]), Buffer.from(Array.from({ length: 3 }, () => 0x41 + Math.floor(random() * 26))), Buffer.from([0x7e])])],
  ];
  const methods = [['ModelInfer', '/inference.GRPCInferenceService/ModelInfer', 'ModelInferRequest'], ['Classify', '/densenet.v1.Classifier/Classify', 'ClassifyRequest'],
    ['ModelMetadata', '/inference.GRPCInferenceService/ModelMetadata', 'ModelMetadataRequest']] as const;
  for (const [name, raw] of undecodable) {
    for (const [method, path, type] of methods) {
      add('protobuf', `${method}-${name}`, { service: 'inference', method: path, raw, expect: invalid(new RegExp(`^request: not a valid ${type} message \\(`)) });
    }
  }
  // protobufjs is lenient where the wire format allows it: a known field with another wire type
  // is read as declared, a string may run short, field 0 is skipped. What it makes of such bytes
  // is an ordinary request, refused for what it (does not) hold.
  const lenient: [string, Buffer, [GrpcExpect, GrpcExpect, GrpcExpect]][] = [
    ['known-field-wrong-wire-type', Buffer.from([0x0f, 0x01]), [invalid(/^model_name: required/), invalid(/^images: at least one image/), invalid(/^name: required/)]],
    ['string-shorter-than-declared', Buffer.from([0x0a, 0x10, 0x61, 0x62]), [notFound(/no model 'ab'/), notFound(/no model 'ab'/), notFound(/no model 'ab'/)]],
    ['field-zero', Buffer.from([0x02, 0x01, 0x00]), [invalid(/^model_name: required/), invalid(/^images: at least one image/), invalid(/^name: required/)]],
  ];
  for (const [name, raw, expects] of lenient) {
    methods.forEach(([method, path], i) => add('protobuf', `${method}-${name}`, { service: 'inference', method: path, raw, expect: expects[i]! }));
  }
  add('oversized', 'message-over-MAX_GRPC_MESSAGE_BYTES', infer(rawFp32([1, 16, 16, 3], Buffer.alloc(LIMITS.MAX_GRPC_MESSAGE_BYTES + 1)), { status: status.RESOURCE_EXHAUSTED, code: null }));
  add('oversized', 'classify-image-over-MAX_IMAGE_BYTES', { service: 'classifier', method: 'Classify', request: { model_name: MODELS.rgb, images: [Buffer.alloc(LIMITS.MAX_IMAGE_BYTES + 1, 7)] },
    expect: limit(/^images\[0\]: encoded size \(bytes\) \d+ exceeds maxEncodedBytes/) });
  // Node's HTTP/2 limits on a request's header block: 128 pairs (maxHeaderListPairs) and
  // SETTINGS_MAX_HEADER_LIST_SIZE; grpc-js reports the stream reset as RESOURCE_EXHAUSTED.
  add('oversized', 'metadata-20KiB', { ...infer({ ...fp32 }, classified(1)), metadata: [['x-padding', 'p'.repeat(20 << 10)]] });
  // Above ~64 KiB of headers nghttp2 fails the whole connection (HPACK COMPRESSION_ERROR) before
  // grpc-js sees the call, and grpc-js clients report the reset as INTERNAL: the one INTERNAL in
  // the corpus, made by the client library for a connection the server's HTTP/2 layer refused.
  // Every call in flight on that connection fails the same way, so it gets a connection of its own.
  add('oversized', 'metadata-100KiB', {
    ...infer({ ...fp32 }, { status: status.INTERNAL, code: null, message: /^Received RST_STREAM with code 9/ }),
    metadata: [['x-padding', 'p'.repeat(100 << 10)]], ownConnection: true,
  });
  add('oversized', 'metadata-300-keys', { ...infer({ ...fp32 }, { status: status.RESOURCE_EXHAUSTED, code: null }), metadata: Array.from({ length: 300 }, (_, i) => [`x-k-${i}`, 'v'] as [string, string]) });
  return cases;
}
