// What a user of `npm start` sees: the server started with the default settings serves the
// embedded Fashion-MNIST model, and photographs-like uploads — the test set's garments
// re-rendered dark on a white background, upscaled to 320×320 and JPEG-compressed, as a scan or
// a product photo would be — are classified right. The manifest's preprocessing (polarity
// detection, letterbox, resize, normalisation) has to undo all of that for this to pass.
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.ts';
import { startServer, type RunningServer } from '../../../src/main.ts';
import { parseIdxDataset } from '../../../src/eval/idx.ts';
import { silentLogger } from '../../../src/logger.ts';

const COUNT = 60;
const set = parseIdxDataset(
  readFileSync('test/fixtures/fashion-mnist/t10k-images-idx3-ubyte.gz'),
  readFileSync('test/fixtures/fashion-mnist/t10k-labels-idx1-ubyte.gz'),
);

/** Test image i as a 320×320 JPEG: dark garment on white, 20 px white margin. */
async function productPhoto(i: number): Promise<Buffer> {
  const pixels = set.images.subarray(i * 784, (i + 1) * 784).map((v) => 255 - v);
  return sharp(Buffer.from(pixels), { raw: { width: 28, height: 28, channels: 1 } })
    .resize(280, 280, { kernel: 'lanczos3' })
    .extend({ top: 20, bottom: 20, left: 20, right: 20, background: { r: 255, g: 255, b: 255 } })
    .toColourspace('srgb')
    .jpeg({ quality: 90 })
    .toBuffer();
}

describe('npm start: the default model classifies uploaded photos over REST', () => {
  let server: RunningServer;
  beforeAll(async () => {
    // Only the ports and the log level differ from what `npm start` uses.
    server = await startServer(loadConfig({ HOST: '127.0.0.1', HTTP_PORT: '0', GRPC_PORT: '0', LOG_LEVEL: 'silent' }), silentLogger);
  }, 180_000);
  afterAll(async () => server?.shutdown('test done'));

  it(`labels ${COUNT} re-rendered test images, mostly right, with the Fashion-MNIST class names`, async () => {
    const labels = readFileSync('models/fashion-mnist-densenet/labels.txt', 'utf8').trim().split('\n');
    let correct = 0;
    for (let i = 0; i < COUNT; i++) {
      const res = await fetch(`http://127.0.0.1:${server.httpPort}/v1/classify?top_k=1`, {
        method: 'POST', body: await productPhoto(i), headers: { 'content-type': 'image/jpeg' },
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { model: string; predictions: { label: string; index: number }[][] };
      expect(body.model).toBe('fashion-mnist-densenet');
      const top = body.predictions[0]![0]!;
      expect(top.label).toBe(labels[top.index]);
      if (top.index === set.labels[i]) correct++;
    }
    // The model scores ~93% on the clean test set; the JPEG round trip may cost a few images.
    expect(correct / COUNT).toBeGreaterThanOrEqual(0.85);
  }, 120_000);
});
