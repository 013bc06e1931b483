// What the overload run sends, written once to files the C generators read:
//   - the image: the 451×300 JPEG of a cat (~35 KB), made from the cat fixture
//     (test/fixtures/images/chelsea.png, 385×256) resized to 451×300 and encoded at quality 92;
//   - the gRPC request: a densenet.v1.ClassifyRequest with the model name and that JPEG, encoded
//     by the same proto-loader definition the server decodes with, behind the 5-byte gRPC
//     message prefix (0 = uncompressed, then the length, big-endian).
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { CLASSIFIER_SERVICE_NAME, loadProtos } from '../../src/api/grpc/proto.ts';
import { REPO_ROOT } from '../load/server-process.ts';

export const CAT_FIXTURE = path.join(REPO_ROOT, 'test/fixtures/images/chelsea.png');
export const GRPC_CLASSIFY_PATH = `/${CLASSIFIER_SERVICE_NAME}/Classify`;

export interface Payloads {
  jpegFile: string;
  jpegBytes: number;
  /** The length-prefixed gRPC message, as h2load's --data sends it. */
  grpcFile: string;
  grpcBody: Buffer;
  /** REST path of the raw-image classify route for the model. */
  httpPath: string;
}

export async function catJpeg(): Promise<Buffer> {
  return sharp(CAT_FIXTURE).resize(451, 300).jpeg({ quality: 92 }).toBuffer();
}

/** A gRPC unary request body: flag byte, 4-byte big-endian length, message. */
export function grpcFrame(message: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt8(0, 0);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

export function classifyRequest(model: string, image: Buffer, topK = 5): Buffer {
  const service = loadProtos().packageDefinition[CLASSIFIER_SERVICE_NAME] as Record<string, { requestSerialize(value: object): Buffer }>;
  const method = service.Classify;
  if (!method) throw new Error(`${CLASSIFIER_SERVICE_NAME} has no Classify method`);
  return method.requestSerialize({ model_name: model, images: [image], top_k: topK });
}

export async function writePayloads(dir: string, model: string): Promise<Payloads> {
  await mkdir(dir, { recursive: true });
  const jpeg = await catJpeg();
  const grpcBody = grpcFrame(classifyRequest(model, jpeg));
  const jpegFile = path.join(dir, 'cat-451x300.jpg');
  const grpcFile = path.join(dir, `classify-${model}.grpc`);
  await writeFile(jpegFile, jpeg);
  await writeFile(grpcFile, grpcBody);
  return { jpegFile, jpegBytes: jpeg.length, grpcFile, grpcBody, httpPath: `/v1/models/${encodeURIComponent(model)}/classify` };
}
