// The checked-in proto types are what the generator makes of proto/** today (no drift).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GENERATED_DIR, generateProtoTypes, listFiles } from '../../../scripts/generate-proto-types.ts';

describe('generated proto types', () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('match a fresh generation from proto/** (run `npx tsx scripts/generate-proto-types.ts` after editing a .proto)', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'proto-types-'));
    await generateProtoTypes(dir);
    const fresh = (await listFiles(dir)).map((f) => path.relative(dir!, f));
    const committed = (await listFiles(GENERATED_DIR)).map((f) => path.relative(GENERATED_DIR, f));
    expect(committed).toEqual(fresh);
    for (const file of fresh) {
      const text = await readFile(path.join(GENERATED_DIR, file), 'utf8');
      expect(text, file).toBe(await readFile(path.join(dir, file), 'utf8'));
      // Machine-independent: a path of this checkout would pass here and fail in any other clone.
      expect(text.match(/^\/\/ Original file: .*$/gm)?.filter((line) => !/ Original file: proto\//.test(line)) ?? [], file).toEqual([]);
    }
  });
});
