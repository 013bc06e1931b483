// REST cases of the bad-input corpus that are about the protocol rather than the image: bodies,
// content types, multipart, base64, Open Inference Protocol tensors and the binary data
// extension, model references, size limits, framing, and bodies that drip in or stop half-way.
import { deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { seededRandom } from '../helpers/random.ts';
import {
  binaryBody, bytesElements, float32Le, json, LIMITS, MODELS, multipart,
  type HttpCase, type HttpExpect, type HttpRequestSpec,
} from './cases.ts';

const V1 = `/v1/models/${MODELS.rgb}/classify`;
const V2 = `/v2/models/${MODELS.rgb}/infer`;
const PIXELS = 16 * 16 * 3;

const refused = (status: number, code: string | null | 'unlogged', message?: RegExp): HttpExpect => ({ status, code, ...(message ? { message } : {}) });
const invalid = (message: RegExp): HttpExpect => refused(400, 'INVALID_INPUT', message);
const tooLarge = (message: RegExp): HttpExpect => refused(413, 'LIMIT_EXCEEDED', message);
const classified = (images: number): HttpExpect => ({ status: 200, code: null, images });

/** A random JSON value: scalars, arrays and objects, at most `depth` deep. */
function randomJson(random: () => number, depth: number): unknown {
  const pick = Math.floor(random() * (depth > 0 ? 7 : 5));
  switch (pick) {
    case 0: return null;
    case 1: return random() < 0.5;
    case 2: return Math.round((random() - 0.5) * 1e6) / 100;
    case 3: return Array.from({ length: Math.floor(random() * 8) }, () => String.fromCharCode(32 + Math.floor(random() * 95))).join('');
    case 4: return '';
    case 5: return Array.from({ length: Math.floor(random() * 4) }, () => randomJson(random, depth - 1));
    default: {
      const keys = ['inputs', 'images', 'shape', 'data', 'id', 'x', 'parameters', 'outputs'];
      return Object.fromEntries(Array.from({ length: 1 + Math.floor(random() * 3) }, () => [keys[Math.floor(random() * keys.length)]!, randomJson(random, depth - 1)]));
    }
  }
}

function noise(random: () => number, length: number): Buffer {
  return Buffer.from(Array.from({ length }, () => Math.floor(random() * 256)));
}

/** An FP32 input of the tiny models, [1, 16, 16, 3] NHWC, smooth values. */
const pixels = (n = 1): number[] => Array.from({ length: n * PIXELS }, (_, i) => Math.sin(i / 9));
const fp32Input = (shape: unknown[], data: unknown, extra: Record<string, unknown> = {}) => ({ name: 'input', datatype: 'FP32', shape, data, ...extra });

export function httpProtocolCases(seed: number, good: Buffer): HttpCase[] {
  const random = seededRandom(seed ^ 0x5eed);
  const cases: HttpCase[] = [];
  const add = (category: string, name: string, request: HttpRequestSpec, expect: HttpExpect | 'no-answer'): void => {
    cases.push({ kind: 'http', category, name: `${category}/${name}`, request, expect });
  };
  const post = (path: string, body: Buffer, headers: [string, string][] = [], extra: Partial<HttpRequestSpec> = {}): HttpRequestSpec =>
    ({ method: 'POST', path, body, headers, ...extra });
  const postJson = (path: string, value: unknown, headers: [string, string][] = []) => post(path, json(value), [['content-type', 'application/json'], ...headers]);
  const infer = (value: unknown) => postJson(V2, value);
  const goodB64 = good.toString('base64');

  // ---- empty bodies --------------------------------------------------------------------------
  add('empty-body', 'v1-raw', post(V1, Buffer.alloc(0), [['content-type', 'image/png']]), invalid(/^body: empty/));
  add('empty-body', 'v1-no-content-type', post(V1, Buffer.alloc(0)), invalid(/^body: empty/));
  add('empty-body', 'v1-json', post(V1, Buffer.alloc(0), [['content-type', 'application/json']]), invalid(/^body: empty/));
  add('empty-body', 'v1-json-null', postJson(V1, null), invalid(/^body: empty/));
  add('empty-body', 'v1-chunked-empty', post(V1, Buffer.alloc(0), [], { framing: 'chunked' }), invalid(/^body: empty/));
  add('empty-body', 'v2-infer', post(V2, Buffer.alloc(0)), invalid(/^body: /));
  add('empty-body', 'v2-infer-json', post(V2, Buffer.alloc(0), [['content-type', 'application/json']]), invalid(/^body: /));
  add('empty-body', 'v2-infer-binary-header', post(V2, Buffer.alloc(0), [['inference-header-content-length', '0']]), invalid(/^Inference-Header-Content-Length: /));
  add('empty-body', 'v2-infer-json-object', infer({}), invalid(/^inputs: /));
  add('empty-body', 'v1-json-object', postJson(V1, {}), invalid(/^images: /));

  // ---- random bodies -------------------------------------------------------------------------
  for (const length of [1, 3, 17, 256, 4096]) {
    const body = noise(random, length);
    add('random-body', `v2-bytes-${length}`, post(V2, body), invalid(/^(body|inputs): /));
    add('random-body', `v1-json-bytes-${length}`, post(V1, body, [['content-type', 'application/json']]), invalid(/^(body|images): /));
  }
  for (let i = 0; i < 24; i++) {
    const value = randomJson(random, 3);
    add('random-body', `v2-json-value-${i}`, infer(value), invalid(/^(body|inputs|id|parameters|outputs)(\[\d+\])?[.:\s]/));
    if (i % 2 === 0) {
      add('random-body', `v1-json-value-${i}`, postJson(V1, value), invalid(/^(body|images)(\[\d+\])?[.:\s]/));
    }
  }

  // ---- Content-Type that does not say what the body is -----------------------------------------
  // A raw /v1 body is one image whatever it is labelled (curl -T sends none; TorchServe takes any).
  for (const type of ['text/plain', 'image/jpeg', 'application/x-www-form-urlencoded', 'image/png; charset=;;', '']) {
    add('content-type', `v1-png-as-${type || 'blank'}`, post(V1, good, type ? [['content-type', type]] : []), classified(1));
  }
  // A Content-Type that is not a media type at all is refused by Fastify's parser lookup.
  for (const type of ['x/y/z', 'image', ';;;', 'image/png\tjunk']) {
    add('content-type', `v1-malformed-${type.replace(/\W/g, '_')}`, post(V1, good, [['content-type', type]]), refused(415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE'));
  }
  add('content-type', 'v1-png-as-json', post(V1, good, [['content-type', 'application/json']]), invalid(/^body: not valid JSON/));
  add('content-type', 'v1-png-as-json-charset', post(V1, good, [['content-type', 'application/json; charset=utf-8']]), invalid(/^body: not valid JSON/));
  add('content-type', 'v1-json-as-octet-stream', post(V1, json({ images: [goodB64] }), [['content-type', 'application/octet-stream']]), invalid(/^images\[0\]: not a decodable image/));
  // /v2 infer reads JSON (+ binary) whatever the Content-Type: tritonclient sends none.
  for (const type of ['text/plain', 'image/png', 'multipart/form-data; boundary=x', 'application/octet-stream']) {
    add('content-type', `v2-json-as-${type.split(';')[0]}`, post(V2, json({ inputs: [fp32Input([1, 16, 16, 3], pixels())] }), [['content-type', type]]), classified(1));
  }
  add('content-type', 'v2-png-as-json', post(V2, good, [['content-type', 'application/json']]), invalid(/^body: not valid JSON/));

  // ---- multipart that is not well formed --------------------------------------------------------
  const form = multipart([{ data: good }]);
  add('multipart', 'no-boundary', post(V1, form.body, [['content-type', 'multipart/form-data']]), invalid(/^body: /));
  add('multipart', 'wrong-boundary', post(V1, form.body, [['content-type', 'multipart/form-data; boundary=other']]), invalid(/^body: /));
  add('multipart', 'truncated', post(V1, form.body.subarray(0, form.body.length - 40), [['content-type', form.type]]), invalid(/^body: /));
  add('multipart', 'no-closing-delimiter', post(V1, form.body.subarray(0, form.body.length - 24), [['content-type', form.type]]), invalid(/^body: /));
  add('multipart', 'only-fields', post(V1, multipart([{ data: Buffer.from('hello'), filename: '' }]).body, [['content-type', form.type]]), invalid(/^body: the multipart upload holds no file/));
  add('multipart', 'empty-file', post(V1, multipart([{ data: Buffer.alloc(0) }]).body, [['content-type', form.type]]), invalid(/^images\[0\]: /));
  add('multipart', 'garbage-body', post(V1, noise(random, 300), [['content-type', form.type]]), invalid(/^body: /));
  add('multipart', 'no-content-disposition', post(V1, Buffer.from(`--corpus-b0undary\r\nContent-Type: image/png\r\n\r\n${good.toString('latin1')}\r\n--corpus-b0undary--\r\n`, 'latin1'),
    [['content-type', form.type]]), invalid(/^body: /));
  add('multipart', 'nine-files', post(V1, multipart(Array.from({ length: 9 }, () => ({ data: good }))).body, [['content-type', form.type]]),
    tooLarge(/MAX_IMAGES_PER_REQUEST/));
  const manyHeaders = Array.from({ length: 250 }, (_, i) => `X-H${i}: v`).join('\r\n');
  // busboy reads at most headerPairs (200) headers of a part and ignores the rest: still a file.
  add('multipart', 'part-with-250-headers', post(V1, Buffer.concat([Buffer.from(`--corpus-b0undary\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n${manyHeaders}\r\n\r\n`), good, Buffer.from('\r\n--corpus-b0undary--\r\n')]),
    [['content-type', form.type]]), classified(1));
  add('multipart', 'boundary-200-chars', post(V1, multipart([{ data: good }], 'b'.repeat(200)).body, [['content-type', `multipart/form-data; boundary=${'b'.repeat(200)}`]]), classified(1));
  add('multipart', 'mixed-subtype', post(V1, form.body, [['content-type', form.type.replace('form-data', 'mixed')]]), invalid(/^images\[0\]: not a decodable image/));

  // ---- base64 in JSON -----------------------------------------------------------------------------
  const b64Bad: [string, string][] = [
    ['invalid-chars', '!!!!'], ['length-mod-4-is-1', 'AAAAA'], ['padding-in-the-middle', 'AA==AAAA'], ['too-much-padding', 'A==='],
    ['spaces', 'iVBO Rw0K'], ['unicode', 'iVBORw0K\u00e9'], ['data-url-bad-payload', 'data:image/png;base64,@@@@'], ['only-padding', '===='],
  ];
  for (const [name, text] of b64Bad) {
    add('base64', `v1-${name}`, postJson(V1, { images: [text] }), invalid(/^images\[0\]: not valid base64/));
    add('base64', `v2-${name}`, infer({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [1], data: [text] }] }), invalid(/^inputs\[0\]\.data\[0\]: not valid base64/));
  }
  add('base64', 'v1-base64-of-text', postJson(V1, { images: [Buffer.from('hello world').toString('base64')] }), invalid(/^images\[0\]: not a decodable image/));
  add('base64', 'v1-number', postJson(V1, { images: [12345] }), invalid(/^images\[0\]: /));
  add('base64', 'v1-null-element', postJson(V1, { images: [null] }), invalid(/^images\[0\]: /));
  add('base64', 'v1-string-not-array', postJson(V1, { images: goodB64 }), invalid(/^images: /));
  add('base64', 'v1-empty-array', postJson(V1, { images: [] }), invalid(/^images: at least one image/));
  add('base64', 'v2-number-element', infer({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [1], data: [7] }] }), invalid(/^inputs\[0\]\.data\[0\]: expected an encoded image/));
  // Legitimate spellings of base64 that must work.
  add('base64', 'v1-data-url', postJson(V1, { images: [`data:image/png;base64,${goodB64}`] }), classified(1));
  add('base64', 'v1-url-safe', postJson(V1, { images: [goodB64.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')] }), classified(1));
  add('base64', 'v1-line-breaks', postJson(V1, { images: [goodB64.replace(/(.{76})/g, '$1\n')] }), classified(1));
  add('base64', 'v1-extra-keys-ignored', postJson(V1, { images: [goodB64], colour: 'red' }), classified(1));

  // ---- Open Inference Protocol tensors: datatype, shape, element and byte counts ---------------
  for (const datatype of ['FP64', 'FP16', 'BF16', 'INT32', 'INT8', 'UINT16', 'BOOL']) {
    add('v2-tensor', `datatype-${datatype}`, infer({ inputs: [{ name: 'input', datatype, shape: [1, 16, 16, 3], data: pixels().map(() => 0) }] }), invalid(/^inputs\[0\]\.datatype: /));
  }
  for (const datatype of ['fp32', '', 'FLOAT', 'STRING']) {
    add('v2-tensor', `datatype-unknown-${datatype || 'empty'}`, infer({ inputs: [{ name: 'input', datatype, shape: [1], data: [0] }] }), invalid(/^inputs\[0\]\.datatype: /));
  }
  const badShapes: [string, number[]][] = [['4-channels', [1, 16, 16, 4]], ['15-high', [1, 15, 16, 3]], ['2d', [16, 48]], ['5d', [1, 1, 16, 16, 3]], ['1d', [768]], ['nchw-wrong', [1, 3, 16, 15]]];
  for (const [name, shape] of badShapes) {
    const count = shape.reduce((a, b) => a * b, 1);
    add('v2-tensor', `shape-${name}`, infer({ inputs: [fp32Input(shape, new Array(count).fill(0.5))] }), invalid(/^inputs\[0\]\.shape: /));
  }
  add('v2-tensor', 'shape-empty', infer({ inputs: [fp32Input([], [])] }), invalid(/^inputs\[0\]\.shape: /));
  add('v2-tensor', 'batch-of-zero', infer({ inputs: [fp32Input([0, 16, 16, 3], [])] }), invalid(/^input: the batch is empty/));
  add('v2-tensor', 'batch-of-nine', infer({ inputs: [fp32Input([9, 16, 16, 3], pixels(9))] }), tooLarge(/^inputs\[0\]\.shape: 9 images exceed MAX_IMAGES_PER_REQUEST 8/));
  // Legitimate layouts: [H,W,C] without a batch dimension, and NCHW recognised from the shape.
  add('v2-tensor', 'hwc-no-batch', infer({ inputs: [fp32Input([16, 16, 3], pixels())] }), classified(1));
  add('v2-tensor', 'nchw', infer({ inputs: [fp32Input([2, 3, 16, 16], pixels(2))] }), classified(2));
  add('v2-tensor', 'nested-data', infer({ inputs: [fp32Input([1, 16, 16, 3], [Array.from({ length: 16 }, () => Array.from({ length: 16 }, () => [0.1, 0.2, 0.3]))])] }), classified(1));
  add('v2-tensor', 'one-element-short', infer({ inputs: [fp32Input([1, 16, 16, 3], pixels().slice(1))] }), invalid(/^inputs\[0\]\.data: shape \[1, 16, 16, 3\] needs 768 elements, got 767/));
  add('v2-tensor', 'one-element-over', infer({ inputs: [fp32Input([1, 16, 16, 3], [...pixels(), 0])] }), invalid(/^inputs\[0\]\.data: more elements/));
  add('v2-tensor', 'nested-9-deep', infer({ inputs: [fp32Input([1], [[[[[[[[[[1]]]]]]]]]])] }), invalid(/^inputs\[0\]\.(data|shape): /));
  add('v2-tensor', 'string-element', infer({ inputs: [fp32Input([1, 16, 16, 3], [...pixels().slice(1), '0.5'])] }), invalid(/^inputs\[0\]\.data\[767\]: expected a number/));
  add('v2-tensor', 'data-object', infer({ inputs: [fp32Input([1, 16, 16, 3], { a: 1 })] }), invalid(/^inputs\[0\]\.data: /));
  add('v2-tensor', 'data-null', infer({ inputs: [fp32Input([1, 16, 16, 3], null)] }), invalid(/^inputs\[0\]\.data: /));
  add('v2-tensor', 'data-missing', infer({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 16, 16, 3] }] }), invalid(/^inputs\[0\]\.data: required/));
  for (const [name, value] of [['256', 256], ['minus-1', -1], ['fraction', 1.5], ['string', '7'], ['bool', true]] as const) {
    add('v2-tensor', `uint8-${name}`, infer({ inputs: [{ name: 'input', datatype: 'UINT8', shape: [1, 16, 16, 3], data: [...new Array(PIXELS - 1).fill(3), value] }] }),
      invalid(/^inputs\[0\]\.data\[767\]: expected an integer in 0…255/));
  }
  add('v2-tensor', 'uint8-valid', infer({ inputs: [{ name: 'input', datatype: 'UINT8', shape: [1, 16, 16, 3], data: new Array(PIXELS).fill(255) }] }), classified(1));
  add('v2-tensor', 'bytes-shape-2-one-element', infer({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [2], data: [goodB64] }] }), invalid(/^inputs\[0\]\.data: shape \[2\] needs 2 elements, got 1/));
  add('v2-tensor', 'bytes-shape-1x1', infer({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [1, 1], data: [[goodB64]] }] }), classified(1));
  add('v2-tensor', 'no-inputs', infer({ inputs: [] }), invalid(/^inputs: /));
  add('v2-tensor', 'two-inputs', infer({ inputs: [fp32Input([1, 16, 16, 3], pixels()), fp32Input([1, 16, 16, 3], pixels())] }), invalid(/^inputs: the model takes exactly one input/));
  add('v2-tensor', 'seventeen-inputs', infer({ inputs: Array.from({ length: 17 }, () => fp32Input([1], [0])) }), invalid(/^inputs: /));
  add('v2-tensor', 'input-named-data_0', infer({ inputs: [{ ...fp32Input([1, 16, 16, 3], pixels()), name: 'data_0' }] }), invalid(/^inputs\[0\]\.name: unknown input 'data_0'/));
  add('v2-tensor', 'input-name-empty', infer({ inputs: [{ ...fp32Input([1, 16, 16, 3], pixels()), name: '' }] }), invalid(/^inputs\[0\]\.name: /));
  const outputsBad: [string, unknown][] = [
    ['unknown', [{ name: 'fc6_1' }]], ['twice', [{ name: 'logits' }, { name: 'logits' }]], ['classification-negative', [{ name: 'logits', parameters: { classification: -1 } }]],
    ['classification-fraction', [{ name: 'logits', parameters: { classification: 1.5 } }]], ['classification-string', [{ name: 'logits', parameters: { classification: '3' } }]],
    ['binary-data-string', [{ name: 'logits', parameters: { binary_data: 'yes' } }]], ['not-an-array', { name: 'logits' }], ['nameless', [{}]],
  ];
  for (const [name, outputs] of outputsBad) add('v2-tensor', `outputs-${name}`, infer({ inputs: [fp32Input([1, 16, 16, 3], pixels())], outputs }), invalid(/^outputs(\[\d+\])?[.:]/));
  add('v2-tensor', 'outputs-classification-1000000', infer({ inputs: [fp32Input([1, 16, 16, 3], pixels())], outputs: [{ name: 'probabilities', parameters: { classification: 1_000_000 } }] }), classified(1));
  const parametersBad: [string, unknown][] = [
    ['timeout-negative', { timeout: -1 }], ['timeout-fraction', { timeout: 1.5 }], ['timeout-string', { timeout: '10' }], ['priority-huge', { priority: 2_000_000 }],
    ['priority-string', { priority: 'high' }], ['binary-data-output-string', { binary_data_output: 'yes' }], ['custom-object', { custom: { nested: 1 } }], ['not-an-object', [1, 2]],
  ];
  for (const [name, parameters] of parametersBad) add('v2-tensor', `parameters-${name}`, infer({ inputs: [fp32Input([1, 16, 16, 3], pixels())], parameters }), invalid(/^parameters(\.\w+)?: /));
  // A key that is not an identifier is quoted where the message names it.
  add('v2-tensor', 'parameters-empty-key', infer({ inputs: [fp32Input([1, 16, 16, 3], pixels())], parameters: { '': [1] } }), invalid(/^parameters\[""\]: /));
  add('v2-tensor', 'parameters-dotted-key', infer({ inputs: [fp32Input([1, 16, 16, 3], pixels())], parameters: { 'a.b': {} } }), invalid(/^parameters\["a\.b"\]: /));
  add('v2-tensor', 'id-300-chars', infer({ id: 'x'.repeat(300), inputs: [fp32Input([1, 16, 16, 3], pixels())] }), invalid(/^id: /));
  add('v2-tensor', 'id-number', infer({ id: 5, inputs: [fp32Input([1, 16, 16, 3], pixels())] }), invalid(/^id: /));

  // ---- the binary data extension: sizes that do not add up ------------------------------------
  const tensor = float32Le(pixels());
  const binaryInput = (size: number) => ({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 16, 16, 3], parameters: { binary_data_size: size } }] });
  const withHeader = (header: unknown, bytes: Buffer, length?: string) => {
    const { body, headerLength } = binaryBody(header, bytes);
    return post(V2, body, [['inference-header-content-length', length ?? String(headerLength)]]);
  };
  for (const delta of [-4, -1, 1, 4]) {
    add('binary-header', `binary-data-size-${delta > 0 ? 'plus' : 'minus'}-${Math.abs(delta)}`, withHeader(binaryInput(tensor.length + delta), tensor), invalid(/^(inputs\[0\]\.(data|parameters\.binary_data_size)|Inference-Header-Content-Length): /));
  }
  add('binary-header', 'binary-data-size-2^31', withHeader(binaryInput(2 ** 31), tensor), invalid(/^inputs\[0\]\.parameters\.binary_data_size: /));
  add('binary-header', 'binary-data-size-negative', withHeader(binaryInput(-1), tensor), invalid(/^inputs\[0\]\.parameters\.binary_data_size: /));
  add('binary-header', 'binary-data-size-and-data', withHeader({ inputs: [{ ...binaryInput(tensor.length).inputs[0], data: [1] }] }, tensor), invalid(/^inputs\[0\]\.data: must be absent/));
  add('binary-header', 'binary-data-without-header', post(V2, binaryBody(binaryInput(tensor.length), tensor).body), invalid(/^body: not valid JSON/));
  add('binary-header', 'header-without-binary-data', withHeader({ inputs: [fp32Input([1, 16, 16, 3], pixels())] }, Buffer.alloc(0)), classified(1));
  add('binary-header', 'leftover-bytes', withHeader({ inputs: [fp32Input([1, 16, 16, 3], pixels())] }, Buffer.alloc(10)), invalid(/^Inference-Header-Content-Length: 10 bytes after the JSON header/));
  const valid = binaryBody(binaryInput(tensor.length), tensor);
  const headerValues: [string, string, HttpExpect][] = [
    ['not-a-number', 'abc', invalid(/^Inference-Header-Content-Length: 'abc' is not a byte count/)],
    ['negative', '-5', invalid(/^Inference-Header-Content-Length: /)],
    ['zero', '0', invalid(/^Inference-Header-Content-Length: 0; the JSON header must come first/)],
    ['exponent', '1e2', invalid(/^Inference-Header-Content-Length: /)],
    ['past-the-body', String(valid.body.length + 1), invalid(/^Inference-Header-Content-Length: \d+ exceeds the body's/)],
    ['huge', '999999999999', invalid(/^Inference-Header-Content-Length: 999999999999 exceeds/)],
    ['13-digits', '1000000000000', invalid(/^Inference-Header-Content-Length: /)],
    ['one-short', String(valid.headerLength - 1), invalid(/^body: not valid JSON/)],
    ['one-long', String(valid.headerLength + 1), invalid(/^body: not valid JSON/)],
    ['half', String(Math.floor(valid.headerLength / 2)), invalid(/^body: not valid JSON/)],
    ['fraction', `${valid.headerLength}.0`, invalid(/^Inference-Header-Content-Length: /)],
    ['hex', `0x${valid.headerLength.toString(16)}`, invalid(/^Inference-Header-Content-Length: /)],
    ['list', `${valid.headerLength}, ${valid.headerLength}`, invalid(/^Inference-Header-Content-Length: /)],
    ['blank', ' ', invalid(/^Inference-Header-Content-Length: /)],
    ['padded-but-right', ` ${valid.headerLength} `, classified(1)],
  ];
  for (const [name, value, expect] of headerValues) add('binary-header', `header-${name}`, post(V2, valid.body, [['inference-header-content-length', value]]), expect);
  add('binary-header', 'header-twice', post(V2, valid.body, [['inference-header-content-length', String(valid.headerLength)], ['inference-header-content-length', String(valid.headerLength)]]),
    invalid(/^Inference-Header-Content-Length: /));
  const bytesTensor = (elements: Buffer, shape: number[]) => withHeader({ inputs: [{ name: 'input', datatype: 'BYTES', shape, parameters: { binary_data_size: elements.length } }] }, elements);
  const lengthOnly = Buffer.alloc(4);
  lengthOnly.writeUInt32LE(0xffffffff);
  add('binary-header', 'bytes-length-prefix-overflow', bytesTensor(Buffer.concat([lengthOnly, good]), [1]), invalid(/^inputs\[0\]\.parameters\.binary_data_size: element 0 declares 4294967295 bytes/));
  add('binary-header', 'bytes-truncated-prefix', bytesTensor(Buffer.concat([bytesElements([good]), Buffer.from([1, 0])]), [2]), invalid(/^inputs\[0\]\.parameters\.binary_data_size: element 1 is truncated/));
  add('binary-header', 'bytes-count-mismatch', bytesTensor(bytesElements([good, good]), [3]), invalid(/^inputs\[0\]\.parameters\.binary_data_size: its shape declares 3 BYTES elements, got 2/));
  add('binary-header', 'bytes-nine-images', bytesTensor(bytesElements(Array.from({ length: 9 }, () => good)), [9]), tooLarge(/^inputs\[0\]\.shape: 9 images exceed MAX_IMAGES_PER_REQUEST 8/));

  // ---- negative, fractional and huge dimensions ----------------------------------------------
  for (const [name, shape] of [['negative', [-1, 16, 16, 3]], ['fraction', [1.5, 16, 16, 3]], ['2^31', [2 ** 31, 16, 16, 3]], ['1e300', [1e300, 16, 16, 3]],
    ['2^53+2', [2 ** 53 + 2, 16, 16, 3]], ['string', ['1', 16, 16, 3]], ['null', [null, 16, 16, 3]], ['nine-dims', [1, 1, 1, 1, 1, 1, 16, 16, 3]]] as const) {
    add('dims', `fp32-${name}`, infer({ inputs: [fp32Input([...shape], [])] }), invalid(/^inputs\[0\]\.shape/));
  }
  // Dimensions that are each allowed but whose product is enormous: refused from the shape,
  // before any allocation of that size (MAX_TENSOR_ELEMENTS); below it, by the image count
  // (MAX_IMAGES_PER_REQUEST), as on gRPC.
  for (const [datatype, n] of [['FP32', 2 ** 31 - 1], ['FP32', 100_000], ['UINT8', 2 ** 31 - 1], ['UINT8', 1_000_000], ['BYTES', 2 ** 31 - 1], ['FP32', 20_000], ['BYTES', 1_000_000]] as const) {
    const shape = datatype === 'BYTES' ? [n] : [n, 16, 16, 3];
    const elements = shape.reduce((a, b) => a * b, 1);
    const expect = elements > LIMITS.MAX_TENSOR_ELEMENTS ? tooLarge(/^inputs\[0\]\.shape: .* more than MAX_TENSOR_ELEMENTS/) : tooLarge(/^inputs\[0\]\.shape: \d+ images exceed MAX_IMAGES_PER_REQUEST/);
    add('dims', `${datatype.toLowerCase()}-batch-${n}-json`, infer({ inputs: [{ name: 'input', datatype, shape, data: [] }] }), expect);
    add('dims', `${datatype.toLowerCase()}-batch-${n}-binary`, withHeader({ inputs: [{ name: 'input', datatype, shape, parameters: { binary_data_size: 16 } }] }, Buffer.alloc(16)), expect);
  }
  add('dims', 'product-past-2^53', infer({ inputs: [fp32Input([2 ** 31 - 1, 2 ** 31 - 1, 2 ** 31 - 1], [])] }), tooLarge(/^inputs\[0\]\.shape: .* more than MAX_TENSOR_ELEMENTS/));

  // ---- NaN and infinities ---------------------------------------------------------------------
  for (const [name, value] of [['nan', NaN], ['inf', Infinity], ['minus-inf', -Infinity]] as const) {
    for (const at of [0, 383, PIXELS - 1]) {
      const data = pixels();
      data[at] = value;
      add('non-finite', `binary-${name}-at-${at}`, withHeader(binaryInput(PIXELS * 4), float32Le(data)), invalid(new RegExp(`^input: element ${at} \\(image 0\\) is ${String(value)}; FP32 input must be finite`)));
    }
  }
  // JSON has no NaN: 1e999 parses as Infinity; "NaN" is a string.
  add('non-finite', 'json-1e999', post(V2, Buffer.from(`{"inputs":[{"name":"input","datatype":"FP32","shape":[1,16,16,3],"data":[1e999${',0'.repeat(PIXELS - 1)}]}]}`), [['content-type', 'application/json']]),
    invalid(/^input: element 0 \(image 0\) is Infinity/));
  add('non-finite', 'json-minus-1e999', post(V2, Buffer.from(`{"inputs":[{"name":"input","datatype":"FP32","shape":[1,16,16,3],"data":[${'0,'.repeat(PIXELS - 1)}-1e999]}]}`), [['content-type', 'application/json']]),
    invalid(/^input: element 767 \(image 0\) is -Infinity/));
  add('non-finite', 'json-3.5e38-overflows-float32', infer({ inputs: [fp32Input([1, 16, 16, 3], [3.5e38, ...pixels().slice(1)])] }), invalid(/^input: element 0 \(image 0\) is Infinity/));
  for (const text of ['NaN', 'Infinity', '-Infinity']) {
    add('non-finite', `json-string-${text}`, infer({ inputs: [fp32Input([1, 16, 16, 3], [text, ...pixels().slice(1)])] }), invalid(/^inputs\[0\]\.data\[0\]: expected a number/));
  }
  // Finite extremes are valid input: the network's answer is whatever it computes.
  add('non-finite', 'finite-max-float32', infer({ inputs: [fp32Input([1, 16, 16, 3], new Array(PIXELS).fill(3.4e38))] }), classified(1));
  add('non-finite', 'finite-subnormal', infer({ inputs: [fp32Input([1, 16, 16, 3], new Array(PIXELS).fill(1e-45))] }), classified(1));

  // ---- unknown models, versions and routes ------------------------------------------------------
  const fp32Body = json({ inputs: [fp32Input([1, 16, 16, 3], pixels())] });
  const notFound = refused(404, 'MODEL_NOT_FOUND');
  const modelRefs: [string, string, HttpExpect][] = [
    ['unknown-model', 'nope', notFound], ['unknown-version', `${MODELS.rgb}/versions/9`, refused(404, 'MODEL_NOT_FOUND', /no version 9/)],
    ['version-zero', `${MODELS.rgb}/versions/0`, invalid(/^version: /)], ['version-word', `${MODELS.rgb}/versions/latest`, invalid(/^version: /)],
    ['version-negative', `${MODELS.rgb}/versions/-1`, invalid(/^version: /)], ['version-huge', `${MODELS.rgb}/versions/99999999999`, invalid(/^version: /)],
    ['name-129-chars', 'm'.repeat(129), invalid(/^model: /)], ['name-dot-dot', '..', invalid(/^model: /)], ['name-encoded-dot-dot', '%2e%2e', invalid(/^model: /)],
    ['name-encoded-slash', 'a%2Fb', invalid(/^model: /)], ['name-nul', 'a%00b', invalid(/^model: /)], ['name-space', 'a%20b', invalid(/^model: /)],
    ['name-unicode', '%C3%A9t%C3%A9', invalid(/^model: /)],
    // Fastify's router answers these itself (its frameworkErrors), before the request hooks run.
    ['name-bad-percent', '%ff', refused(400, 'unlogged', /^url: not a valid path/)],
  ];
  for (const [name, ref, expect] of modelRefs) {
    const model = ref.split('/')[0]!;
    const versioned = ref.includes('/versions/');
    add('unknown-model', `v2-infer-${name}`, post(`/v2/models/${ref}/infer`, fp32Body, [['content-type', 'application/json']]), expect);
    add('unknown-model', `v1-classify-${name}`, post(`/v1/models/${ref}/classify`, good, [['content-type', 'image/png']]), expect);
    if (!versioned) add('unknown-model', `v2-metadata-${name}`, { method: 'GET', path: `/v2/models/${model}` }, expect);
  }
  add('unknown-model', 'v2-ready-unknown', { method: 'GET', path: '/v2/models/nope/ready' }, notFound);
  add('unknown-model', 'v2-config-unknown', { method: 'GET', path: '/v2/models/nope/config' }, notFound);
  add('unknown-model', 'name-300-chars', post(`/v2/models/${'m'.repeat(300)}/infer`, fp32Body), refused(414, 'unlogged', /^url: a path segment is longer/));
  add('unknown-model', 'route-get-infer', { method: 'GET', path: V2 }, refused(404, null, /^no route GET/));
  add('unknown-model', 'route-delete-classify', { method: 'DELETE', path: V1 }, refused(404, null, /^no route DELETE/));
  add('unknown-model', 'route-v3', post('/v3/models/tiny/infer', fp32Body), refused(404, null, /^no route/));
  add('unknown-model', 'route-statistics', { method: 'GET', path: `/v2/models/${MODELS.rgb}/stats` }, refused(404, null, /^no route/));
  add('unknown-model', 'repository-load-unknown', postJson('/v2/repository/models/nope/load', {}), notFound);
  add('unknown-model', 'repository-unload-unknown', postJson('/v2/repository/models/nope/unload', {}), notFound);
  add('unknown-model', 'repository-load-traversal', postJson('/v2/repository/models/..%2F..%2Fetc/load', {}), invalid(/^model: /));
  add('unknown-model', 'repository-load-with-config', postJson(`/v2/repository/models/${MODELS.rgb}/load`, { parameters: { config: '{}' } }), invalid(/^parameters/));
  add('unknown-model', 'repository-index-not-json', post('/v2/repository/index', Buffer.from('{ready'), [['content-type', 'application/json']]), invalid(/^body: not valid JSON/));
  add('unknown-model', 'v1-top-k-zero', post(`${V1}?top_k=0`, good), invalid(/^top_k: /));
  add('unknown-model', 'v1-top-k-word', post(`${V1}?top_k=five`, good), invalid(/^top_k: /));
  add('unknown-model', 'v1-top-k-twice', post(`${V1}?top_k=1&top_k=2`, good), invalid(/^top_k: /));
  add('unknown-model', 'v1-timeout-negative', post(`${V1}?timeout_ms=-5`, good), invalid(/^timeout_ms: /));
  add('unknown-model', 'v1-priority-huge', post(`${V1}?priority=1e9`, good), invalid(/^priority: /));

  // ---- oversized headers and bodies ----------------------------------------------------------
  add('oversized', 'header-20KiB', post(V1, good, [['x-padding', 'p'.repeat(20 << 10)]]), refused(431, 'unlogged', /^headers: larger than MAX_HEADER_BYTES$/));
  add('oversized', 'headers-600', post(V1, good, Array.from({ length: 600 }, (_, i) => [`x-h-${i}`, 'v'.repeat(30)] as [string, string])), refused(431, 'unlogged', /^headers: larger than MAX_HEADER_BYTES$/));
  add('oversized', 'url-20KiB', post(`${V1}?pad=${'u'.repeat(20 << 10)}`, good), refused(431, 'unlogged', /^headers: larger than MAX_HEADER_BYTES$/));
  add('oversized', 'v1-raw-declared-over-MAX_IMAGE_BYTES', post(V1, Buffer.alloc(LIMITS.MAX_IMAGE_BYTES + 1, 7)), tooLarge(/\(MAX_IMAGE_BYTES\)/));
  add('oversized', 'v1-raw-chunked-over-MAX_IMAGE_BYTES', post(V1, Buffer.alloc(LIMITS.MAX_IMAGE_BYTES + 1, 7), [], { framing: 'chunked' }), tooLarge(/\(MAX_IMAGE_BYTES\)/));
  add('oversized', 'v2-declared-over-MAX_BODY_BYTES', post(V2, Buffer.alloc(LIMITS.MAX_BODY_BYTES + 1, 0x20)), tooLarge(/\(MAX_BODY_BYTES\)/));
  add('oversized', 'v2-chunked-over-MAX_BODY_BYTES', post(V2, Buffer.alloc(LIMITS.MAX_BODY_BYTES + 1, 0x20), [], { framing: 'chunked' }), tooLarge(/\(MAX_BODY_BYTES\)/));
  add('oversized', 'v1-json-over-MAX_BODY_BYTES', postJson(V1, { images: ['A'.repeat(LIMITS.MAX_BODY_BYTES)] }), tooLarge(/\(MAX_BODY_BYTES\)/));
  add('oversized', 'v1-json-image-over-MAX_IMAGE_BYTES', postJson(V1, { images: [Buffer.alloc(LIMITS.MAX_IMAGE_BYTES + 1, 7).toString('base64')] }), tooLarge(/maxEncodedBytes/));
  add('oversized', 'v1-json-nine-images', postJson(V1, { images: Array.from({ length: 9 }, () => goodB64) }), tooLarge(/MAX_IMAGES_PER_REQUEST/));
  add('oversized', 'multipart-file-over-MAX_IMAGE_BYTES', post(V1, multipart([{ data: Buffer.alloc(LIMITS.MAX_IMAGE_BYTES + 1, 7) }]).body, [['content-type', form.type]]), tooLarge(/MAX_IMAGE_BYTES/));
  add('oversized', 'multipart-total-over-MAX_BODY_BYTES', post(V1, multipart(Array.from({ length: 5 }, () => ({ data: Buffer.alloc(LIMITS.MAX_IMAGE_BYTES - 100, 7) }))).body, [['content-type', form.type]]),
    tooLarge(/MAX_BODY_BYTES/));
  add('oversized', 'v2-bytes-image-over-MAX_IMAGE_BYTES', bytesTensor(bytesElements([Buffer.alloc(LIMITS.MAX_IMAGE_BYTES + 1, 7)]), [1]), tooLarge(/maxEncodedBytes/));

  // ---- Content-Encoding -------------------------------------------------------------------------
  const gz = (headers: [string, string][], body: Buffer) => post(V2, body, [['content-type', 'application/json'], ...headers]);
  add('content-encoding', 'gzip-valid', gz([['content-encoding', 'gzip']], gzipSync(fp32Body)), classified(1));
  add('content-encoding', 'deflate-zlib-valid', gz([['content-encoding', 'deflate']], deflateSync(fp32Body)), classified(1));
  add('content-encoding', 'deflate-raw-valid', gz([['content-encoding', 'deflate']], deflateRawSync(fp32Body)), classified(1));
  add('content-encoding', 'gzip-bomb-16MiB', gz([['content-encoding', 'gzip']], gzipSync(Buffer.alloc(16 << 20, 0x20), { level: 9 })), tooLarge(/the decompressed request body exceeds .* \(MAX_BODY_BYTES\)/));
  add('content-encoding', 'gzip-truncated', gz([['content-encoding', 'gzip']], gzipSync(fp32Body).subarray(0, 100)), invalid(/^body: not valid gzip data/));
  add('content-encoding', 'gzip-garbage', gz([['content-encoding', 'gzip']], noise(random, 200)), invalid(/^body: not valid gzip data/));
  add('content-encoding', 'gzip-but-plain', gz([['content-encoding', 'gzip']], fp32Body), invalid(/^body: not valid gzip data/));
  add('content-encoding', 'br', gz([['content-encoding', 'br']], fp32Body), invalid(/^Content-Encoding: 'br' is not supported/));
  add('content-encoding', 'gzip-twice-listed', gz([['content-encoding', 'gzip, gzip']], gzipSync(gzipSync(fp32Body))), invalid(/^Content-Encoding: /));

  // ---- malformed JSON -------------------------------------------------------------------------
  const jsonTexts: [string, string][] = [
    ['truncated', '{"inputs":[{"name":"input"'], ['trailing-garbage', `${fp32Body.toString()}xyz`], ['single-quotes', "{'inputs': []}"],
    ['bom', `\ufeff${fp32Body.toString()}`], ['comment', '{/* c */"inputs":[]}'], ['nan-literal', '{"inputs":[{"name":"input","datatype":"FP32","shape":[1],"data":[NaN]}]}'],
    ['deep-array-100000', '['.repeat(100_000) + ']'.repeat(100_000)], ['deep-object-50000', '{"a":'.repeat(50_000) + '1' + '}'.repeat(50_000)],
    ['deep-in-data', `{"inputs":[{"name":"input","datatype":"FP32","shape":[1],"data":${'['.repeat(50_000)}1${']'.repeat(50_000)}}]}`],
    ['top-level-string', '"inputs"'], ['top-level-number', '42'], ['top-level-array', '[]'], ['top-level-true', 'true'],
    ['lone-surrogate', '{"id":"\\ud800","inputs":[]}'], ['invalid-utf8', '{"id":"\xff\xfe","inputs":[]}'],
  ];
  for (const [name, text] of jsonTexts) {
    add('json', `v2-${name}`, post(V2, Buffer.from(text, name === 'invalid-utf8' ? 'latin1' : 'utf8'), [['content-type', 'application/json']]), invalid(/^(body|inputs|id)(\[\d+\])?[.:\s]/));
    add('json', `v1-${name}`, post(V1, Buffer.from(text, name === 'invalid-utf8' ? 'latin1' : 'utf8'), [['content-type', 'application/json']]), invalid(/^(body|images)(\[\d+\])?[.:\s]/));
  }
  add('json', 'utf16-body', post(V2, Buffer.from(fp32Body.toString(), 'utf16le'), [['content-type', 'application/json; charset=utf-16']]), invalid(/^body: not valid JSON/));

  // ---- bodies that drip in, and uploads abandoned half-way --------------------------------------
  const drip = (chunk: number, everyMs: number, head = false) => ({ mode: 'drip' as const, chunk, everyMs, head });
  add('slow-drip', 'v1-garbage', post(V1, noise(random, 2000), [], { delivery: drip(100, 40) }), imageRefusalHttp());
  add('slow-drip', 'v1-valid-png', post(V1, good, [], { delivery: drip(Math.ceil(good.length / 20), 40) }), classified(1));
  add('slow-drip', 'v1-headers-and-body', post(V1, noise(random, 500), [], { delivery: drip(40, 30, true) }), imageRefusalHttp());
  add('slow-drip', 'v2-invalid-json', post(V2, Buffer.from(`{"inputs": [${'1,'.repeat(400)}`), [], { delivery: drip(80, 40) }), invalid(/^body: not valid JSON/));
  add('slow-drip', 'v2-wrong-shape-chunked', post(V2, json({ inputs: [fp32Input([1, 16, 16, 4], new Array(1024).fill(0))] }), [], { framing: 'chunked', delivery: drip(200, 20) }),
    invalid(/^inputs\[0\]\.shape: /));
  add('slow-drip', 'v2-binary-short', { ...withHeader(binaryInput(PIXELS * 4), tensor.subarray(0, 1000)), delivery: drip(128, 30) }, invalid(/^inputs\[0\]\.parameters\.binary_data_size: /));
  add('slow-drip', 'multipart-truncated', post(V1, form.body.subarray(0, form.body.length - 30), [['content-type', form.type]], { delivery: drip(64, 30) }), invalid(/^body: /));
  add('slow-drip', 'chunked-over-MAX_IMAGE_BYTES', post(V1, Buffer.alloc(LIMITS.MAX_IMAGE_BYTES + (64 << 10), 9), [], { framing: 'chunked', delivery: drip(64 << 10, 15) }),
    tooLarge(/\(MAX_IMAGE_BYTES\)/));
  for (const [name, request] of [['v1-raw', post(V1, Buffer.alloc(5000, 1))], ['v2-json', post(V2, Buffer.from(`{"inputs":[${' '.repeat(5000)}]}`))],
    ['multipart', post(V1, multipart([{ data: Buffer.alloc(5000, 1) }]).body, [['content-type', form.type]])], ['v2-chunked', post(V2, Buffer.alloc(5000, 0x20), [], { framing: 'chunked' })]] as const) {
    add('slow-drip', `abandoned-${name}`, { ...request, delivery: { mode: 'abandon', sendBytes: 1000 } }, 'no-answer');
  }

  // Uploads that stop (or crawl) and never finish: Node gives up at HEADERS_TIMEOUT_MS /
  // REQUEST_TIMEOUT_MS and answers 408 itself (Fastify's client-error answer).
  const stall = (sendBytes: number) => ({ mode: 'stall' as const, sendBytes });
  add('slow-drip', 'stalled-in-headers', { ...post(V1, good), delivery: stall(40) }, refused(408, 'unlogged', /^request: not received in time/));
  add('slow-drip', 'stalled-in-body', { ...post(V1, good), delivery: stall(300) }, refused(408, 'unlogged', /^request: not received in time/));
  add('slow-drip', 'stalled-chunked-body', { ...post(V2, Buffer.alloc(5000, 0x20), [], { framing: 'chunked' }), delivery: stall(400) }, refused(408, 'unlogged', /^request: not received in time/));
  add('slow-drip', 'crawling-body', post(V1, good, [], { delivery: drip(8, 250) }), refused(408, 'unlogged', /^request: not received in time/));

  // ---- HTTP framing the parser refuses before any route runs ------------------------------------
  const clientError = refused(400, 'unlogged', /^request: not valid HTTP\/1\.1$/);
  const frames: [string, string, Buffer][] = [
    ['content-length-word', `POST ${V1} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: abc`, good],
    ['content-length-negative', `POST ${V1} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: -1`, good],
    ['content-length-twice-different', `POST ${V1} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 10\r\nContent-Length: 20`, good],
    ['content-length-and-chunked', `POST ${V1} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 10\r\nTransfer-Encoding: chunked`, Buffer.from('5\r\nhello\r\n0\r\n\r\n')],
    ['request-line-garbage', 'GARBAGE', Buffer.alloc(0)],
    ['http-version-9', `POST ${V1} HTTP/9.9\r\nHost: x`, Buffer.alloc(0)],
    ['no-host', `POST ${V1} HTTP/1.1\r\nConnection: close\r\nContent-Length: 0`, Buffer.alloc(0)],
    ['header-without-colon', `POST ${V1} HTTP/1.1\r\nHost: x\r\nthis is not a header\r\nContent-Length: 0`, Buffer.alloc(0)],
    ['header-with-nul', `POST ${V1} HTTP/1.1\r\nHost: x\r\nX-Bad: a\u0000b\r\nContent-Length: 0`, Buffer.alloc(0)],
    ['space-before-colon', `POST ${V1} HTTP/1.1\r\nHost: x\r\nContent-Length : 0`, Buffer.alloc(0)],
    ['method-lowercase', `post ${V1} HTTP/1.1\r\nHost: x\r\nContent-Length: 0`, Buffer.alloc(0)],
    ['chunk-size-word', `POST ${V1} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked`, Buffer.from('zz\r\nhello\r\n0\r\n\r\n')],
    ['chunk-size-huge', `POST ${V1} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked`, Buffer.from('ffffffffffffffffff\r\nhello\r\n0\r\n\r\n')],
    ['transfer-encoding-gzip-chunked', `POST ${V1} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: gzip, chunked`, Buffer.from('5\r\nhello\r\n0\r\n\r\n')],
    ['lf-only-line-endings', `POST ${V1} HTTP/1.1\nHost: x\nContent-Length: 0\n`, Buffer.alloc(0)],
  ];
  for (const [name, head, body] of frames) {
    // Node itself refuses a request without Host (requireHostHeader) with an empty 400.
    // 'gzip, chunked' passes the parser (the body is then not an image): only its status is pinned.
    const expected = name === 'no-host' ? { ...clientError, bodyless: true as const }
      : name === 'transfer-encoding-gzip-chunked' ? refused(400, 'unlogged') : clientError;
    add('framing', name, { method: 'POST', path: V1, framing: 'verbatim', head, body }, expected);
  }
  return cases;
}

/** A garbage body sent as a raw /v1 upload: not an image. */
function imageRefusalHttp(): HttpExpect {
  return invalid(/^images\[0\]: not a decodable image/);
}
