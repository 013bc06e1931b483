// The host's byte order, for code that moves typed-array bytes to or from a little-endian format
// (safetensors, ONNX raw_data, the Open Inference Protocol's raw tensors). Typed arrays use the
// platform's order, so on a little-endian host their bytes are already in the format's order.
// A shared leaf like errors.ts: it imports nothing of the service.
import { endianness } from 'node:os';

export const LITTLE_ENDIAN_HOST = endianness() === 'LE';
