import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  base64ToBytes, triangleSize, rowOffset, decodeU8, decodeF16, decodeF32, halfToFloat, decodeValues,
  sliceTriangle, maxPool, unpackTriangle, pooledSize,
} from 'attnscope/data/decode.js';

const f = Math.fround;

test('base64 decodes like Buffer, with and without padding', () => {
  for (const len of [0, 1, 2, 3, 4, 5, 255, 1000]) {
    const bytes = Uint8Array.from({ length: len }, (_, i) => (i * 37 + 11) & 255);
    const b64 = Buffer.from(bytes).toString('base64');
    assert.deepEqual(base64ToBytes(b64), bytes, `length ${len}`);
    assert.deepEqual(base64ToBytes(b64.replace(/=+$/, '')), bytes, `unpadded ${len}`);
  }
  assert.deepEqual([...base64ToBytes('AP8=')], [0, 255]);
  assert.deepEqual([...base64ToBytes('AP8\n')], [0, 255]);
  assert.throws(() => base64ToBytes('AP*8'), /invalid base64: character "\*" at 2/);
});

test('triangle arithmetic', () => {
  assert.deepEqual([0, 1, 2, 3, 4].map(triangleSize), [0, 1, 3, 6, 10]);
  assert.deepEqual([0, 1, 2, 3].map(rowOffset), [0, 1, 3, 6]);
  assert.equal(pooledSize(5, 2), 3);
  assert.equal(pooledSize(4, 2), 2);
});

test('u8 -> /255, f16 and f32 little-endian', () => {
  assert.deepEqual([...decodeU8(new Uint8Array([0, 51, 255]))], [0, f(0.2), 1]);
  assert.equal(halfToFloat(0x3c00), 1);
  assert.equal(halfToFloat(0x3800), 0.5);
  assert.equal(halfToFloat(0xc000), -2);
  assert.equal(halfToFloat(0x0001), 2 ** -24);
  assert.equal(halfToFloat(0x7c00), Infinity);
  assert.ok(Number.isNaN(halfToFloat(0x7e00)));
  assert.deepEqual([...decodeF16(new Uint8Array([0x00, 0x3c, 0x00, 0x38]))], [1, 0.5]);
  const f32 = new Uint8Array(new Float32Array([0.25, 0.1]).buffer);
  const odd = new Uint8Array(9);
  odd.set(f32, 1);
  assert.deepEqual([...decodeF32(odd.subarray(1))], [0.25, f(0.1)], 'unaligned input');
  assert.throws(() => decodeF16(new Uint8Array(3)), /invalid f16 data/);
  const u = decodeValues(new Uint8Array([255]), 'u8');
  assert.equal(u.values[0] * u.factor, 1);
  assert.throws(() => decodeValues(new Uint8Array(1), 'bf16'), /invalid encoding: bf16/);
});

// Lower triangle of   [1   0   0  ]
//                     [.2  .8  0  ]
//                     [0   .4  .6 ]   as u8 = round(p·255)
const TRI = new Uint8Array([255, 51, 204, 0, 102, 153]);
const P = (x) => f(x / 255);

test('lower-triangle unpack (zeros above the diagonal)', () => {
  assert.deepEqual([...unpackTriangle(TRI, 3, 1 / 255)], [P(255), 0, 0, P(51), P(204), 0, 0, P(102), P(153)]);
  assert.throws(() => unpackTriangle(TRI.subarray(0, 5), 3), /invalid triangle: 5 values for 3 rows \(expected 6\)/);
});

test('slices: row, column, window', () => {
  const row = sliceTriangle(TRI, 3, { q0: 2, q1: 3, k0: 0, k1: 3 }, 1 / 255);
  assert.deepEqual({ ...row, data: [...row.data] }, { rows: 1, cols: 3, data: [0, P(102), P(153)] });
  const col = sliceTriangle(TRI, 3, { q0: 1, q1: 3, k0: 1, k1: 2 }, 1 / 255);
  assert.deepEqual({ ...col, data: [...col.data] }, { rows: 2, cols: 1, data: [P(204), P(102)] });
  const above = sliceTriangle(TRI, 3, { q0: 0, q1: 1, k0: 1, k1: 3 }, 1 / 255);
  assert.deepEqual([...above.data], [0, 0]);
  const empty = sliceTriangle(TRI, 3, { q0: 1, q1: 1, k0: 0, k1: 3 });
  assert.deepEqual([empty.rows, empty.cols, empty.data.length], [0, 3, 0]);
  assert.throws(() => sliceTriangle(TRI, 3, { q0: 0, q1: 4, k0: 0, k1: 3 }), /invalid query range/);
  assert.throws(() => sliceTriangle(TRI, 3, { q0: 0, q1: 1, k0: 2, k1: 1 }), /invalid key range/);
});

test('max-pool downsampling against a hand-computed example', () => {
  // stride 2 over 3×3: blocks {rows 0-1} × {cols 0-1}, {rows 0-1} × {col 2}, {row 2} × {cols 0-1}, {row 2} × {col 2}
  const s = sliceTriangle(TRI, 3, { q0: 0, q1: 3, k0: 0, k1: 3, stride: 2 }, 1 / 255);
  assert.equal(s.rows, 2);
  assert.equal(s.cols, 2);
  assert.deepEqual([...s.data], [P(255), 0, P(102), P(153)]);
  // a window at an offset: rows 1..2, keys 1..2, stride 2 -> one cell, max(.8, 0, .4, .6)
  const w = sliceTriangle(TRI, 3, { q0: 1, q1: 3, k0: 1, k1: 3, stride: 2 }, 1 / 255);
  assert.deepEqual([w.rows, w.cols, ...w.data], [1, 1, P(204)]);

  // dense 4×5, stride 3 -> 2×2 (edge blocks are clipped)
  const D = Float32Array.from([
    1, 2, 3, 4, 5,
    6, 7, 8, 9, 10,
    11, 12, 13, 14, 15,
    16, 17, 18, 19, 20,
  ]);
  const m = maxPool(D, 4, 5, 3);
  assert.deepEqual({ ...m, data: [...m.data] }, { rows: 2, cols: 2, data: [13, 15, 18, 20] });
  const same = maxPool(D, 4, 5, 1);
  assert.deepEqual([...same.data], [...D]);
  // pooled slice == maxPool of the unpacked matrix
  const dense = unpackTriangle(TRI, 3, 1 / 255);
  assert.deepEqual([...maxPool(dense, 3, 3, 2).data], [...s.data]);
  assert.throws(() => maxPool(D, 4, 5, 0), /invalid stride: 0/);
});
