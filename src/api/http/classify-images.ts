// The images of a friendly classify request, in whichever way the client sent them: a raw body
// (curl -T / --data-binary), a multipart upload of one or many files, or JSON
// {"images": ["<base64>", ...]}. Multipart is streamed under three limits: bytes per file
// (MAX_IMAGE_BYTES), files (MAX_IMAGES_PER_REQUEST) and bytes in all (MAX_BODY_BYTES).
import type { FastifyRequest } from 'fastify';
import { ServeError } from '../../errors.ts';
import type { Config } from '../../config.ts';
import { decodeBase64 } from '../oip/base64.ts';
import { checkDeclaredLength, tooLarge } from './body-reader.ts';
import { ClassifyJsonBody } from './schemas.ts';
import { parseInput } from './validation.ts';

export type ClassifyLimits = Pick<Config, 'MAX_BODY_BYTES' | 'MAX_IMAGE_BYTES' | 'MAX_IMAGES_PER_REQUEST'>;

/** @fastify/multipart's limit errors, by code, as LIMIT_EXCEEDED naming the setting. */
function multipartLimitError(err: unknown, limits: ClassifyLimits, file: number): ServeError | undefined {
  switch ((err as { code?: unknown }).code) {
    case 'FST_REQ_FILE_TOO_LARGE':
      return tooLarge({ bytes: limits.MAX_IMAGE_BYTES, setting: 'MAX_IMAGE_BYTES' }, `file ${file}`);
    case 'FST_FILES_LIMIT':
      return new ServeError('LIMIT_EXCEEDED', `more than ${limits.MAX_IMAGES_PER_REQUEST} files (MAX_IMAGES_PER_REQUEST)`, {
        limit: 'MAX_IMAGES_PER_REQUEST', max: limits.MAX_IMAGES_PER_REQUEST,
      });
    case 'FST_PARTS_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return new ServeError('LIMIT_EXCEEDED', 'too many multipart parts', { limit: 'parts' });
    default:
      return undefined;
  }
}

async function multipartImages(request: FastifyRequest, limits: ClassifyLimits): Promise<Uint8Array[]> {
  const total = { bytes: limits.MAX_BODY_BYTES, setting: 'MAX_BODY_BYTES' };
  checkDeclaredLength(request, total);
  const images: Uint8Array[] = [];
  let received = 0;
  try {
    for await (const part of request.parts()) {
      if (part.type !== 'file') continue; // form fields are ignored
      const bytes = await part.toBuffer();
      received += bytes.length;
      if (received > total.bytes) throw tooLarge(total);
      images.push(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    }
  } catch (err) {
    const limit = multipartLimitError(err, limits, images.length);
    if (limit) throw limit;
    const { code, statusCode } = err as { code?: unknown; statusCode?: unknown };
    if (err instanceof ServeError || (typeof code === 'string' && code.startsWith('FST_') && typeof statusCode === 'number' && statusCode < 500)) throw err;
    // Otherwise the multipart parser gave up on the stream: the client left, or sent a broken form.
    if (request.raw.readableAborted || request.edge.signal.aborted) {
      throw new ServeError('CANCELLED', 'the client closed the connection while uploading', {}, { cause: err });
    }
    throw new ServeError('INVALID_INPUT', `body: malformed multipart/form-data (${(err as Error).message})`, { field: 'body' }, { cause: err });
  }
  if (images.length === 0) throw new ServeError('INVALID_INPUT', 'body: the multipart upload holds no file', { field: 'body' });
  return images;
}

export async function classifyImages(request: FastifyRequest, limits: ClassifyLimits): Promise<Uint8Array[]> {
  if (request.isMultipart()) return multipartImages(request, limits);
  const body = request.body;
  if (body === undefined || body === null || (Buffer.isBuffer(body) && body.length === 0)) {
    throw new ServeError('INVALID_INPUT', 'body: empty; send an image (raw, multipart, or JSON {"images": [base64…]})', { field: 'body' });
  }
  if (Buffer.isBuffer(body)) return [new Uint8Array(body.buffer, body.byteOffset, body.byteLength)];
  const { images } = parseInput(ClassifyJsonBody, body, 'body');
  if (images.length > limits.MAX_IMAGES_PER_REQUEST) {
    throw new ServeError('LIMIT_EXCEEDED', `images: ${images.length} images exceed ${limits.MAX_IMAGES_PER_REQUEST} (MAX_IMAGES_PER_REQUEST)`, {
      field: 'images', limit: 'MAX_IMAGES_PER_REQUEST', max: limits.MAX_IMAGES_PER_REQUEST,
    });
  }
  return images.map((text, i) => decodeBase64(text, `images[${i}]`));
}
