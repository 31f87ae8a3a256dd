import { test } from 'node:test';
import assert from 'node:assert/strict';
import { queryRow, storedRow, observedWeights, observerWeights } from 'attnscope/views/text_tokens.js';
import { createAttentionReader } from 'attnscope/views/text.js';

// 3 prompt tokens (0..2), 3 generated (3..5)
const TOKENS = [0, 1, 2, 3, 4, 5].map((i) => ({ text: `t${i}`, generated: i >= 3 }));

test('prompt tokens use their own row under both readings', () => {
  for (const reading of ['producing', 'own']) {
    for (const i of [0, 1, 2]) assert.equal(queryRow(i, reading, false), i);
  }
});

test('generated tokens: "producing" reads the row before, "own" their own row', () => {
  assert.equal(queryRow(3, 'producing', true), 2, 'the first generated token uses the last prompt row');
  assert.equal(queryRow(4, 'producing', true), 3);
  assert.equal(queryRow(5, 'producing', true), 4);
  assert.equal(queryRow(3, 'own', true), 3);
  assert.equal(queryRow(5, 'own', true), 5);
  assert.equal(queryRow(0, 'producing', true), -1, 'no row before position 0');
});

test('storedRow: null when the row is not stored', () => {
  assert.equal(storedRow(5, 'own', true, 5), null, 'last row missing (n_rows = 5)');
  assert.equal(storedRow(5, 'producing', true, 5), 4);
  assert.equal(storedRow(0, 'producing', true, 5), null);
  assert.equal(storedRow(2, 'producing', false, 5), 2);
});

// A[q][k] = (q + 1) * 10 + k, a recognisable value per cell (not a real softmax)
const N = 6;
const A = (q, k) => (k <= q ? (q + 1) * 10 + k : 0);

test('observed view is the transpose of the observer view under each reading', () => {
  for (const reading of ['producing', 'own']) {
    for (let j = 0; j < N; j++) {
      const column = Float32Array.from({ length: N - j }, (_, r) => A(j + r, j));
      const observed = new Map(observedWeights(j, column, TOKENS, reading, N));
      for (let t = 0; t < N; t++) {
        const r = storedRow(t, reading, TOKENS[t].generated, N);
        const seen = r !== null && r >= j ? A(r, j) : undefined;
        assert.equal(observed.get(t), seen, `${reading}: focus ${j}, token ${t}`);
      }
    }
  }
  // producing: generated token 3 was produced by row 2, so it has a weight for j = 2 ...
  const col2 = Float32Array.from({ length: N - 2 }, (_, r) => A(2 + r, 2));
  assert.deepEqual(observedWeights(2, col2, TOKENS, 'producing', N), [[2, 32], [3, 32], [4, 42], [5, 52]]);
  // ... and none for j = 3 (row 2 does not see position 3)
  const col3 = Float32Array.from({ length: N - 3 }, (_, r) => A(3 + r, 3));
  assert.deepEqual(observedWeights(3, col3, TOKENS, 'producing', N), [[4, 43], [5, 53]]);
  assert.deepEqual(observedWeights(3, col3, TOKENS, 'own', N), [[3, 43], [4, 53], [5, 63]]);
  assert.deepEqual(observerWeights(Float32Array.from([1, 2])), [[0, 1], [1, 2]]);
});

function fakeSource(n) {
  const calls = [];
  return {
    calls,
    async matrix(run, p) {
      calls.push({ ...p, signal: undefined });
      const rows = p.q1 - p.q0;
      const cols = p.k1 - p.k0;
      const data = new Float32Array(rows * cols);
      for (let q = 0; q < rows; q++) for (let k = 0; k < cols; k++) data[q * cols + k] = A(p.q0 + q, p.k0 + k);
      return { rows, cols, data };
    },
  };
}

test('reader: short runs read one whole matrix per selection', async () => {
  const src = fakeSource(N);
  const rd = createAttentionReader(src, 'r', N);
  const sel = { layer: 0, head: 1, agg: 'none' };
  assert.deepEqual([...(await rd.row(sel, 2))], [30, 31, 32]);
  assert.deepEqual([...(await rd.column(sel, 3))], [43, 53, 63]);
  assert.equal(src.calls.length, 1);
  assert.deepEqual(src.calls[0], { layer: 0, head: 1, agg: 'none', q0: 0, q1: N, k0: 0, k1: N, stride: 1, signal: undefined });
});

test('reader: long runs ask for one row (observer) or one column (observed)', async () => {
  const n = 600;
  const src = fakeSource(n);
  const rd = createAttentionReader(src, 'r', n);
  const sel = { layer: 1, head: 0, agg: 'head-mean' };
  const row = await rd.row(sel, 400);
  assert.equal(row.length, 401);
  assert.equal(row[7], A(400, 7));
  const col = await rd.column(sel, 590);
  assert.deepEqual([...col], Array.from({ length: 10 }, (_, i) => A(590 + i, 590)));
  assert.deepEqual(src.calls.map(({ q0, q1, k0, k1 }) => [q0, q1, k0, k1]), [[400, 401, 0, 401], [590, 600, 590, 591]]);
});
