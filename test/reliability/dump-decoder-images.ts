// Writes the bad-input corpus's images whose outcome a decoder must judge (bit-flipped JPEG,
// PNG, WebP, GIF, TIFF, AVIF) to a folder, one file each, with a manifest, for
// pil-verdicts.py to judge with an independent decoder (Pillow). Not a test: pil-verdicts.py
// runs it (npx tsx test/reliability/dump-decoder-images.ts <folder>).
import { writeFile } from 'node:fs/promises';
import { register } from 'node:module';
import path from 'node:path';
import sharp from 'sharp';

// The corpus's image helpers (test/inference/preprocess/images.ts) import vitest's expect, which
// throws on import outside a vitest run; they do not call it while building images. Outside
// vitest, 'vitest' resolves to a stub whose expect throws if it ever is called.
const STUB = 'export function expect() { throw new Error("expect() called outside vitest"); }';
const HOOK = `export async function resolve(specifier, context, next) {
  if (specifier === 'vitest') return { url: 'data:text/javascript,' + encodeURIComponent(${JSON.stringify(STUB)}), shortCircuit: true };
  return next(specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(HOOK)}`);
const { buildImagePayloads } = await import('./bad-images.ts');
const { CORPUS_SEED } = await import('./corpus.ts');

const [folder] = process.argv.slice(2);
if (!folder) throw new Error('usage: dump-decoder-images.ts <folder>');
const images = (await buildImagePayloads(CORPUS_SEED)).filter((p) => p.outcome === 'decoder');
const manifest = images.map((p, i) => ({ name: p.name, file: `${String(i).padStart(3, '0')}.bin` }));
for (const [i, p] of images.entries()) await writeFile(path.join(folder, manifest[i]!.file), p.bytes);
// The bytes come from sharp's encoders: a new sharp or libvips may change them (and their hashes).
await writeFile(path.join(folder, 'manifest.json'), JSON.stringify({ sharp: sharp.versions.sharp, vips: sharp.versions.vips, images: manifest }, null, 2));
