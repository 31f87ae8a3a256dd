import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createEmbeddedSource, createChunkRegistry, installChunkHook, chunkFile, chunkKey,
} from 'attnscope/data/embedded_source.js';

const b64 = (bytes) => Buffer.from(Uint8Array.from(bytes)).toString('base64');
const P = (x) => Math.fround(x / 255);

// n_rows = 3, 2 layers × 10 heads (two groups: 0-7, 8-9)
//   head 0 = [1 0 0; .2 .8 0; 0 .4 .6]     head 1 = [1 0 0; 1 0 0; 1/3 1/3 1/3]
const H0 = [255, 51, 204, 0, 102, 153];
const H1 = [255, 255, 0, 85, 85, 85];
const zeros = () => [0, 0, 0, 0, 0, 0];
const MANIFEST = {
  complete: true,
  prompt: 'a b',
  model: { name: 'Tiny', n_layers: 2, n_heads: 10 },
  attention: { n_layers: 2, n_heads: 10, n_rows: 3 },
  n_prompt: 2,
  tokens: [{ text: 'a' }, { text: ' b' }, { text: 'c', generated: true }],
};

function chunks() {
  const group0 = [H0, H1, ...Array.from({ length: 6 }, zeros)].flat();
  const group1 = [H1, H0].flat(); // heads 8 (= H1) and 9 (= H0)
  return {
    manifest: { run: 'r', kind: 'manifest', manifest: structuredClone(MANIFEST) },
    l0g0: { run: 'r', kind: 'heads', layer: 0, head0: 0, head1: 8, encoding: 'u8', data: b64(group0) },
    l1g1: { run: 'r', kind: 'heads', layer: 1, head0: 8, head1: 10, encoding: 'u8', data: b64(group1) },
    mean: { run: 'r', kind: 'agg', layer: 0, agg: 'head-mean', encoding: 'f32', data: Buffer.from(new Float32Array([1, 0.5, 0.5, 0.25, 0.25, 0.5]).buffer).toString('base64') },
    lmean: { run: 'r', kind: 'agg', layer: -1, agg: 'layer-mean', encoding: 'u8', data: b64([255, 0, 255, 0, 0, 255]) },
    grid: { run: 'r', kind: 'grid', size: 2, data: b64(Array.from({ length: 2 * 10 * 4 }, (_, i) => i)) },
  };
}

// A fake <script src>: the file's chunk arrives asynchronously through the page hook.
function fakeLoader(files, target) {
  const loaded = [];
  const fn = async (file) => {
    loaded.push(file);
    await new Promise((r) => setTimeout(r, 1));
    if (!(file in files)) throw new Error(`could not load ${file}`);
    if (files[file]) target.attnscopeChunk(files[file]);
  };
  fn.loaded = loaded;
  return fn;
}

function setup(onPage, files = {}) {
  const target = { attnscopeChunks: [...onPage] }; // what index.html's bootstrap queued
  const loadScript = fakeLoader(files, target);
  const src = createEmbeddedSource({ runs: ['r'], loadScript, target });
  return { src, loadScript, target };
}

const plain = (m) => ({ rows: m.rows, cols: m.cols, data: [...m.data] });

test('matrix() of one head from a page chunk, vs the hand-computed matrix', async () => {
  const c = chunks();
  const { src, loadScript } = setup([c.manifest, c.l0g0]);
  const m = await src.manifest('r');
  assert.equal(m.n_rows, 3);
  const full = await src.matrix('r', { layer: 0, head: 0, agg: 'none', q0: 0, q1: 3, k0: 0, k1: 3 });
  assert.deepEqual(plain(full), { rows: 3, cols: 3, data: [P(255), 0, 0, P(51), P(204), 0, 0, P(102), P(153)] });
  const h1 = await src.matrix('r', { layer: 0, head: 1, agg: 'none', q0: 1, q1: 3, k0: 0, k1: 2 });
  assert.deepEqual(plain(h1), { rows: 2, cols: 2, data: [1, 0, P(85), P(85)] });
  // one row (observer hover) and one column (observed hover)
  assert.deepEqual(plain(await src.matrix('r', { layer: 0, head: 0, agg: 'none', q0: 2, q1: 3, k0: 0, k1: 3 })).data, [0, P(102), P(153)]);
  assert.deepEqual(plain(await src.matrix('r', { layer: 0, head: 0, agg: 'none', q0: 1, q1: 3, k0: 1, k1: 2 })).data, [P(204), P(102)]);
  // stride 2: max-pooled blocks
  const pooled = await src.matrix('r', { layer: 0, head: 0, agg: 'none', q0: 0, q1: 3, k0: 0, k1: 3, stride: 2 });
  assert.deepEqual(plain(pooled), { rows: 2, cols: 2, data: [1, 0, P(102), P(153)] });
  assert.deepEqual(loadScript.loaded, [], 'nothing loaded: all on the page');
});

test('a chunk not on the page is loaded once from its file, then used', async () => {
  const c = chunks();
  const { src, loadScript } = setup([c.manifest], {
    'data/r/L1_H8-10.js': c.l1g1,
    'data/r/L0_head-mean.js': c.mean,
    'data/r/L-1_layer-mean.js': c.lmean,
  });
  const req = { layer: 1, head: 9, agg: 'none', q0: 0, q1: 3, k0: 0, k1: 3 };
  const [a, b] = await Promise.all([src.matrix('r', req), src.matrix('r', { ...req, head: 8 })]);
  assert.deepEqual(plain(a).data, [P(255), 0, 0, P(51), P(204), 0, 0, P(102), P(153)]);
  assert.deepEqual(plain(b).data, [1, 0, 0, 1, 0, 0, P(85), P(85), P(85)]);
  assert.deepEqual(loadScript.loaded, ['data/r/L1_H8-10.js'], 'one load for both heads of the group');
  const mean = await src.matrix('r', { layer: 0, head: 5, agg: 'head-mean', q0: 1, q1: 3, k0: 0, k1: 3 });
  assert.deepEqual(plain(mean).data, [0.5, 0.5, 0, 0.25, 0.25, 0.5], 'f32 aggregate');
  const lm = await src.matrix('r', { layer: 7, head: 0, agg: 'layer-mean', q0: 0, q1: 3, k0: 0, k1: 3, stride: 3 });
  assert.deepEqual(plain(lm), { rows: 1, cols: 1, data: [1] }, 'layer-mean ignores the layer');
  assert.deepEqual(loadScript.loaded.slice(1), ['data/r/L0_head-mean.js', 'data/r/L-1_layer-mean.js']);
});

test('clear errors: missing file, a file without the chunk, bad requests, bad data', async () => {
  const c = chunks();
  const bad = { ...c.l0g0, data: b64([1, 2, 3]) };
  const { src } = setup([c.manifest, bad], { 'data/r/L1_H0-8.js': null });
  await assert.rejects(src.matrix('r', { layer: 0, head: 0, agg: 'rollout', q0: 0, q1: 1, k0: 0, k1: 1 }), /could not load data\/r\/L0_rollout\.js/);
  await assert.rejects(src.matrix('r', { layer: 1, head: 0, agg: 'none', q0: 0, q1: 1, k0: 0, k1: 1 }), /data\/r\/L1_H0-8\.js loaded but did not hold the expected data/);
  await assert.rejects(src.matrix('r', { layer: 0, head: 0, agg: 'none', q0: 0, q1: 1, k0: 0, k1: 1 }), /invalid data for layer 0, heads 0-7: 3 values, expected 48/);
  await assert.rejects(src.matrix('r', { layer: 2, head: 0, agg: 'none', q0: 0, q1: 1, k0: 0, k1: 1 }), /invalid layer: 2/);
  await assert.rejects(src.matrix('r', { layer: 0, head: 10, agg: 'none', q0: 0, q1: 1, k0: 0, k1: 1 }), /invalid head: 10/);
  await assert.rejects(src.matrix('r', { layer: 0, head: 0, agg: 'none', q0: 0, q1: 4, k0: 0, k1: 1 }), /invalid q1: 4/);
  await assert.rejects(src.matrix('r', { layer: 0, head: 0, agg: 'sum', q0: 0, q1: 1, k0: 0, k1: 1 }), /invalid agg: sum/);
  await assert.rejects(src.matrix('r', { layer: 0, head: 0, agg: 'none', q0: 0, q1: 1, k0: 0, k1: 1, stride: 0 }), /invalid stride: 0/);
  await assert.rejects(src.manifest('other'), /could not load data\/other\/manifest\.js/);
});

test('grid, listRuns and the page hook', async () => {
  const c = chunks();
  const { src, target } = setup([c.manifest, c.grid]);
  const g = await src.grid('r', 64);
  assert.equal(g.size, 2, 'the size the page holds');
  assert.deepEqual([g.n_layers, g.n_heads, g.data.length, g.data[5]], [2, 10, 80, 5]);
  assert.deepEqual(await src.listRuns(), [{ id: 'r', name: 'r', model: 'Tiny', prompt: 'a b', n_tokens: 3, complete: true }]);
  // chunks arriving later through the hook (or the bootstrap queue's push) are registered
  target.attnscopeChunks.push(c.l0g0);
  const m = await src.matrix('r', { layer: 0, head: 0, agg: 'none', q0: 0, q1: 1, k0: 0, k1: 1 });
  assert.deepEqual([...m.data], [1]);
});

test('registry, hook, keys and file names', () => {
  const reg = createChunkRegistry();
  const target = { attnscopeChunks: [{ run: 'x', kind: 'manifest', manifest: {} }] };
  installChunkHook(reg, target);
  assert.ok(reg.has('x|manifest'));
  target.attnscopeChunk({ run: 'x', kind: 'grid', size: 8, data: '' });
  assert.ok(reg.has('x|grid'));
  assert.equal(chunkKey({ run: 'x', kind: 'agg', layer: 3, agg: 'layer-mean' }), 'x|agg|-1|layer-mean');
  assert.equal(chunkFile('my run', { kind: 'heads', layer: 2, head0: 8, head1: 14 }), 'data/my%20run/L2_H8-14.js');
  assert.equal(chunkFile('r', { kind: 'agg', layer: 4, agg: 'rollout' }), 'data/r/L4_rollout.js');
  assert.equal(chunkFile('r', { kind: 'agg', layer: -1, agg: 'layer-mean' }), 'data/r/L-1_layer-mean.js');
  assert.equal(chunkFile('r', { kind: 'manifest' }), 'data/r/manifest.js');
  assert.equal(chunkFile('r', { kind: 'grid' }), 'data/r/grid.js');
});
