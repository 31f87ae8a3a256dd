import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  fitScale, fitView, clampView, zoomAt, panBy, screenToMatrix, cellAt,
  visibleWindow, strideFor, requestFor, covers, MAX_SCALE, labelFontSize, tickStep,
} from 'attnscope/views/matrix_viewport.js';

const area = { n: 1000, width: 500, height: 400 };
const close = (a, b, eps = 1e-9) => assert.ok(Math.abs(a - b) <= eps, `${a} != ${b}`);

test('fit shows the whole matrix in the smaller side', () => {
  assert.equal(fitScale(area), 0.4);
  assert.deepEqual(fitView(area), { scale: 0.4, x0: 0, y0: 0 });
  assert.equal(fitScale({ n: 0, width: 10, height: 10 }), 10);
  assert.throws(() => fitScale({ n: 3, width: 0, height: 10 }), /invalid width: 0/);
});

test('zoom around a point keeps the point under the cursor', () => {
  let v = fitView(area);
  for (const [f, px, py] of [[4, 123, 77], [2.5, 300, 10], [3, 20, 390], [0.5, 250, 200]]) {
    const before = screenToMatrix(v, px, py);
    v = zoomAt(v, area, f, px, py);
    const after = screenToMatrix(v, px, py);
    close(after.x, before.x, 1e-6); close(after.y, before.y, 1e-6);
  }
});

test('zoom is clamped between fit and MAX_SCALE', () => {
  let v = zoomAt(fitView(area), area, 0.1, 50, 50);
  assert.equal(v.scale, fitScale(area));
  v = zoomAt(v, area, 1e6, 50, 50);
  assert.equal(v.scale, MAX_SCALE);
  assert.throws(() => zoomAt(v, area, 0, 1, 1), /invalid zoom factor: 0/);
});

test('clamping keeps the matrix on screen', () => {
  const v = clampView({ scale: 4, x0: -10, y0: 5000 }, area);
  assert.equal(v.x0, 0);
  assert.equal(v.y0, 1000 - 400 / 4);
  // zooming out near the edge cannot show empty space beyond the matrix
  const z = zoomAt({ scale: 4, x0: 875, y0: 900 }, area, 0.5, 499, 399);
  assert.ok(z.x0 + area.width / z.scale <= 1000 + 1e-9);
  assert.ok(z.y0 + area.height / z.scale <= 1000 + 1e-9);
  // a small matrix never pans
  const small = { n: 10, width: 500, height: 400 };
  assert.deepEqual(clampView({ scale: 40, x0: 3, y0: 3 }, small), { scale: 40, x0: 0, y0: 0 });
});

test('pan follows the pointer', () => {
  const v = panBy({ scale: 10, x0: 100, y0: 100 }, area, 50, -20);
  assert.deepEqual(v, { scale: 10, x0: 95, y0: 102 });
});

test('cellAt maps to query row and key column', () => {
  const v = { scale: 10, x0: 100.5, y0: 200 };
  assert.deepEqual(cellAt(v, area, 0, 0), { q: 200, k: 100 });
  assert.deepEqual(cellAt(v, area, 5, 19.9), { q: 201, k: 101 });
  assert.equal(cellAt({ scale: 1, x0: 0, y0: 0 }, { n: 10, width: 100, height: 100 }, 50, 5), null);
});

test('visible window covers partly visible cells and is clamped', () => {
  assert.deepEqual(visibleWindow({ scale: 10, x0: 100.5, y0: 200 }, area), { q0: 200, q1: 240, k0: 100, k1: 151 });
  assert.deepEqual(visibleWindow(fitView(area), area), { q0: 0, q1: 1000, k0: 0, k1: 1000 });
});

test('stride gives at most one cell per device pixel', () => {
  assert.equal(strideFor(1, 1), 1);
  assert.equal(strideFor(30, 1), 1);
  assert.equal(strideFor(0.4, 1), 3);       // 2.5 cells per pixel -> 3
  assert.equal(strideFor(0.4, 2), 2);       // 1.25 per device pixel -> 2
  assert.equal(strideFor(0.5, 2), 1);
  assert.equal(strideFor(1 / 3, 1), 3);
  assert.throws(() => strideFor(0), /invalid scale/);
});

test('request at low zoom: whole matrix, downsampled', () => {
  const r = requestFor(fitView(area), area, { dpr: 1 });
  assert.deepEqual(r, { q0: 0, q1: 1000, k0: 0, k1: 1000, stride: 3 });
  const rows = Math.ceil((r.q1 - r.q0) / r.stride);
  assert.ok(rows <= Math.min(area.width, area.height));
});

test('request at high zoom: visible window plus margin, stride 1', () => {
  const v = { scale: 20, x0: 300, y0: 500 };            // 25 x 20 cells visible
  const r = requestFor(v, area, { margin: 0.2 });
  assert.deepEqual(r, { q0: 496, q1: 524, k0: 295, k1: 330, stride: 1 });
  const r0 = requestFor(v, area, { margin: 0 });
  assert.deepEqual(r0, { q0: 500, q1: 520, k0: 300, k1: 325, stride: 1 });
});

test('request ranges snap to stride multiples and respect the cell cap', () => {
  const big = { n: 100000, width: 1000, height: 1000 };
  const v = clampView({ scale: 0.1, x0: 12345, y0: 23456 }, big);
  const r = requestFor(v, big, { dpr: 1 });
  assert.equal(r.stride, 10);
  for (const key of ['q0', 'k0']) assert.equal(r[key] % r.stride, 0);
  for (const key of ['q1', 'k1']) assert.ok(r[key] % r.stride === 0 || r[key] === big.n);
  const capped = requestFor(fitView(big), big, { dpr: 4, maxCells: 10000 });
  assert.ok(Math.ceil((capped.q1 - capped.q0) / capped.stride) * Math.ceil((capped.k1 - capped.k0) / capped.stride) <= 10000);
  assert.deepEqual(requestFor(fitView({ n: 0, width: 10, height: 10 }), { n: 0, width: 10, height: 10 }),
    { q0: 0, q1: 0, k0: 0, k1: 0, stride: 1 });
});

test('covers: a loaded request with margin serves small pans at the same stride', () => {
  const v = { scale: 20, x0: 300, y0: 500 };
  const loaded = requestFor(v, area);
  const v2 = panBy(v, area, 40, 30);
  assert.ok(covers(loaded, requestFor(v2, area), visibleWindow(v2, area)));
  const v3 = panBy(v, area, 4000, 0);
  assert.ok(!covers(loaded, requestFor(v3, area), visibleWindow(v3, area)));
  const v4 = zoomAt(v, area, 0.01, 0, 0);
  assert.ok(!covers(loaded, requestFor(v4, area), visibleWindow(v4, area)));
});

test('labels only when readable; ticks are round and spaced', () => {
  assert.equal(labelFontSize(2), 0);
  assert.ok(labelFontSize(12) >= 9);
  assert.equal(labelFontSize(80), 13);
  assert.equal(tickStep(0.4), 100);
  assert.equal(tickStep(10), 5);
  assert.equal(tickStep(100), 1);
});
