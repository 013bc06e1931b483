// Strict base64 for images sent inside JSON. Buffer.from(s, 'base64') silently skips characters
// it does not know, so a truncated or mangled upload would reach the decoder as garbage; this
// rejects it with the field's name instead.
import { ServeError } from '../../errors.ts';

// Standard or URL-safe alphabet, optional padding; line breaks (base64 -w 76) are allowed.
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;
const DATA_URL = /^data:[^,]{0,200};base64,/;

export function decodeBase64(text: string, field: string): Uint8Array {
  const body = text.replace(DATA_URL, '').replace(/[\r\n]/g, '');
  const padded = body.includes('=');
  if (body.length === 0) throw new ServeError('INVALID_INPUT', `${field}: empty; expected a base64-encoded image`, { field });
  if (!BASE64.test(body) || body.length % 4 === 1 || (padded && body.length % 4 !== 0)) {
    throw new ServeError('INVALID_INPUT', `${field}: not valid base64`, { field });
  }
  const bytes = Buffer.from(body, 'base64');
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
