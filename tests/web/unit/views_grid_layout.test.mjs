import { test } from 'node:test';
import assert from 'node:assert/strict';
import { thumbSize, thumbOffset, thumbBytes, byteColors, paintThumb } from 'attnscope/views/grid_layout.js';
import { createScale } from 'attnscope/color/scale.js';

test('thumbnail size fits the heads in the width, within bounds', () => {
  assert.equal(thumbSize(4, 440), 96);                 // capped
  assert.equal(thumbSize(12, 640), 46);                // (640 - 40 - 48) / 12 = 46
  assert.equal(thumbSize(64, 640), 24);                // floor
  assert.throws(() => thumbSize(0, 100), /invalid n_heads: 0/);
});

test('thumbnail offsets follow (n_layers, n_heads, size, size)', () => {
  const size = 2, n_layers = 3, n_heads = 4;
  const data = new Uint8Array(n_layers * n_heads * size * size).map((_, i) => i);
  const grid = { n_layers, n_heads, size, data };
  assert.equal(thumbOffset(grid, 0, 0), 0);
  assert.equal(thumbOffset(grid, 1, 2), (1 * 4 + 2) * 4);
  assert.deepEqual([...thumbBytes(grid, 2, 3)], [44, 45, 46, 47]);
  assert.throws(() => thumbOffset(grid, 3, 0), /invalid layer: 3/);
  assert.throws(() => thumbOffset(grid, 0, -1), /invalid head: -1/);
});

test('byteColors follows the scale; paintThumb maps bytes through it', () => {
  const lin = byteColors(createScale({ type: 'linear', min: 0, max: 1 }));
  const log = byteColors(createScale({ type: 'log', min: 1 / 255, max: 1 }));
  const top = createScale({ type: 'linear', min: 0, max: 1 }).rgb(1);
  assert.deepEqual([...lin.subarray(1020, 1023)], top);
  assert.deepEqual([...log.subarray(1020, 1023)], top);
  // a small byte is darker (further along the palette) on the log scale than on the linear one
  assert.ok(log[4 * 10] + log[4 * 10 + 1] < lin[4 * 10] + lin[4 * 10 + 1]);
  const colors = new Uint8ClampedArray(1024).map((_, i) => (i % 4 === 3 ? 255 : i >> 2));
  const rgba = paintThumb(Uint8Array.from([0, 255, 10]), colors, new Uint8ClampedArray(12));
  assert.deepEqual([...rgba], [0, 0, 0, 255, 255, 255, 255, 255, 10, 10, 10, 255]);
});
