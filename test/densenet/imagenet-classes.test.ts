// The shipped ImageNet class names are torchvision's list, unchanged: the digest recorded in
// the file's header (computed from Debian's python3-torchvision 0.14.1) must match.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { IMAGENET_CLASSES } from '../../src/densenet/index.ts';

it('is torchvision 0.14.1\'s _IMAGENET_CATEGORIES: 1,000 unique names, the digest in its header', () => {
  expect(IMAGENET_CLASSES).toHaveLength(1000);
  expect(new Set(IMAGENET_CLASSES).size).toBe(1000);
  const header = readFileSync(new URL('../../src/densenet/imagenet-classes.ts', import.meta.url), 'utf8');
  const recorded = /newline: ([0-9a-f]{64})/.exec(header)?.[1];
  expect(recorded).toBeDefined();
  expect(createHash('sha256').update(`${IMAGENET_CLASSES.join('\n')}\n`).digest('hex')).toBe(recorded);
  // Spot checks against the ILSVRC-2012 class order.
  expect([IMAGENET_CLASSES[0], IMAGENET_CLASSES[1], IMAGENET_CLASSES[281], IMAGENET_CLASSES[999]]).toEqual(['tench', 'goldfish', 'tabby', 'toilet tissue']);
});
