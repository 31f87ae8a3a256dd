import { test } from 'node:test';
import assert from 'node:assert/strict';
import { topK, entropy, normalizedEntropy, summarize, columnLayout, binRow, rowsOf } from 'attnscope/views/flow_layout.js';

const close = (a, b, eps = 1e-9) => assert.ok(Math.abs(a - b) <= eps, `${a} != ${b}`);

test('topK: largest first, ties to the earlier position, offset applied', () => {
  assert.deepEqual(topK([0.1, 0.5, 0.2, 0.5, 0.05], 3), [
    { index: 1, weight: 0.5 }, { index: 3, weight: 0.5 }, { index: 2, weight: 0.2 }]);
  assert.deepEqual(topK(Float32Array.from([0.25, 0.75]), 3, 10).map((t) => t.index), [11, 10]);
  assert.deepEqual(topK([1, 2, 3], 0), []);
  assert.deepEqual(topK([NaN, 0.3], 2), [{ index: 1, weight: 0.3 }]);
  assert.throws(() => topK([1], -1), /invalid k: -1/);
});

test('topK agrees with a full sort', () => {
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const w = Array.from({ length: 500 }, () => Math.round(rnd() * 50) / 50);
  const ref = w.map((weight, index) => ({ index, weight }))
    .sort((a, b) => b.weight - a.weight || a.index - b.index).slice(0, 7);
  assert.deepEqual(topK(w, 7), ref);
});

test('entropy of known distributions', () => {
  close(entropy([1]), 0);
  close(entropy([0, 1, 0]), 0);
  close(entropy([0.5, 0.5]), 1);
  close(entropy([0.25, 0.25, 0.25, 0.25]), 2);
  close(entropy(new Array(8).fill(1 / 8)), 3);
  close(entropy([0.5, 0.25, 0.25]), 1.5);
  close(entropy([0.5, 0.5], Math.E), Math.log(2));
  close(entropy([2, 2]), 1);                 // normalised by the sum
  close(entropy([0, 0]), 0);
  close(normalizedEntropy([0.25, 0.25, 0.25, 0.25]), 1);
  close(normalizedEntropy([1, 0, 0, 0]), 0);
  close(normalizedEntropy([1]), 0);
});

test('summarize: top-3, entropy in bits, max', () => {
  const s = summarize([0.5, 0.25, 0.125, 0.125], { offset: 4 });
  assert.deepEqual(s.top.map((t) => t.index), [4, 5, 6]);
  close(s.entropyBits, 1.75);
  assert.equal(s.max, 0.5);
});

test('columnLayout bins tokens when columns would be too thin', () => {
  const a = columnLayout(10, 500, 3);
  assert.equal(a.binSize, 1); assert.equal(a.bins.length, 10); close(a.colWidth, 50);
  const b = columnLayout(1000, 600, 3);
  assert.equal(b.binSize, 5); assert.equal(b.bins.length, 200); close(b.colWidth, 3);
  assert.deepEqual(b.bins[199], [995, 1000]);
  const c = columnLayout(7, 6, 3);                    // bins of 4, the last one partial
  assert.deepEqual(c.bins, [[0, 4], [4, 7]]);
  assert.deepEqual(columnLayout(0, 10).bins, []);
  assert.deepEqual(binRow([0.1, 0.4, 0.2, 0.3, 0.0], [[0, 2], [2, 4], [4, 5]]), [0.4, 0.3, 0]);
});

test('rowsOf: n_rows, else attention.n_rows, else the tokens', () => {
  assert.equal(rowsOf({ n_rows: 4, attention: { n_rows: 9 } }), 4);
  assert.equal(rowsOf({ attention: { n_rows: 9 } }), 9);
  assert.equal(rowsOf({ tokens: [1, 2] }), 2);
});
