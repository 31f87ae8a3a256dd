import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHttpSource, createLru } from 'attnscope/data/http_source.js';

const MANIFEST = {
  complete: true,
  attention: { n_layers: 2, n_heads: 3, n_rows: 4 },
  model: { name: 'Tiny', n_layers: 2, n_heads: 3 },
  tokens: [{ text: 'a' }, { text: 'b' }, { text: 'c' }, { text: 'd' }],
  n_rows: 4,
};

// A fake `attnscope serve`: records every request; matrix cell (q, k) = q * 10 + k.
function fakeServer({ delay = 0, manifest = MANIFEST } = {}) {
  const requests = [];
  const fetch = async (url, init = {}) => {
    requests.push({ url, method: init.method || 'GET', body: init.body });
    const signal = init.signal;
    if (delay) {
      await new Promise((resolve, reject) => {
        const t = setTimeout(resolve, delay);
        if (signal) signal.addEventListener('abort', () => { clearTimeout(t); reject(new DOMException('aborted', 'AbortError')); });
      });
    }
    if (signal && signal.aborted) throw new DOMException('aborted', 'AbortError');
    const u = new URL(url, 'http://x');
    const json = (body, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
    if (u.pathname === '/api/runs') return json({ runs: [{ id: 'r1', name: 'r1', model: 'Tiny', prompt: 'p', n_tokens: 4, complete: true }] });
    if (u.pathname === '/api/runs/r1/manifest') return json(structuredClone(manifest));
    if (u.pathname === '/api/runs/nope/manifest') return json({ error: 'unknown run: nope' }, 404);
    if (u.pathname === '/api/runs/r1/matrix') {
      const p = Object.fromEntries([...u.searchParams].map(([k, v]) => [k, /^\d+$/.test(v) ? Number(v) : v]));
      if (p.layer === 1 && p.agg === 'rollout') return json({ error: 'bad parameter: agg' }, 400);
      const rows = Math.ceil((p.q1 - p.q0) / p.stride);
      const cols = Math.ceil((p.k1 - p.k0) / p.stride);
      const data = new Float32Array(rows * cols);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) data[r * cols + c] = (p.q0 + r) * 10 + p.k0 + c;
      return new Response(data.buffer, { headers: { 'X-Rows': String(rows), 'X-Cols': String(cols) } });
    }
    if (u.pathname === '/api/runs/r1/grid') {
      const size = Number(u.searchParams.get('size'));
      return new Response(new Uint8Array(2 * 3 * size * size).fill(7), { headers: { 'X-Layers': '2', 'X-Heads': '3', 'X-Size': String(size) } });
    }
    if (u.pathname === '/api/capture') return json({ job: 'j1' });
    if (u.pathname === '/api/jobs/j1') return json({ phase: 'done', done: 4, total: 4, run: 'r2', error: null });
    return json({ error: 'not found' }, 404);
  };
  return { fetch, requests };
}

const REQ = { layer: 0, head: 2, agg: 'none', q0: 1, q1: 3, k0: 0, k1: 3 };

test('matrix: the right URL, Float32Array data, rows and cols from the headers', async () => {
  const srv = fakeServer();
  const src = createHttpSource({ fetch: srv.fetch });
  const m = await src.matrix('r1', REQ);
  assert.equal(m.rows, 2);
  assert.equal(m.cols, 3);
  assert.ok(m.data instanceof Float32Array);
  assert.deepEqual([...m.data], [10, 11, 12, 20, 21, 22]);
  const urls = srv.requests.map((r) => r.url);
  assert.deepEqual(urls, ['/api/runs/r1/manifest', '/api/runs/r1/matrix?layer=0&head=2&agg=none&q0=1&q1=3&k0=0&k1=3&stride=1']);
});

test('slices are cached (LRU) and identical requests in flight are shared', async () => {
  const srv = fakeServer({ delay: 5 });
  const src = createHttpSource({ fetch: srv.fetch });
  const [a, b] = await Promise.all([src.matrix('r1', REQ), src.matrix('r1', REQ)]);
  assert.equal(a, b);
  const c = await src.matrix('r1', REQ);
  assert.equal(c, a, 'from the cache');
  // the head does not matter for an aggregate: same URL
  await src.matrix('r1', { ...REQ, agg: 'head-mean', head: 0 });
  await src.matrix('r1', { ...REQ, agg: 'head-mean', head: 1 });
  assert.equal(srv.requests.filter((r) => r.url.includes('/matrix')).length, 2);
});

test('a superseded request is aborted when its only caller gives up; shared ones survive', async () => {
  const srv = fakeServer({ delay: 30 });
  const src = createHttpSource({ fetch: srv.fetch });
  await src.manifest('r1');
  const ctl = new AbortController();
  const p = src.matrix('r1', { ...REQ, signal: ctl.signal });
  await new Promise((r) => setTimeout(r, 5));
  ctl.abort();
  await assert.rejects(p, { name: 'AbortError' });
  assert.equal(src.cacheInfo.inflight, 0);
  assert.equal(src.cacheInfo.entries, 0, 'nothing cached from an aborted request');

  // two callers, one aborts: the other still gets the data from the same fetch
  const c1 = new AbortController();
  const c2 = new AbortController();
  const q = { ...REQ, q0: 0 };
  const x = src.matrix('r1', { ...q, signal: c1.signal });
  const y = src.matrix('r1', { ...q, signal: c2.signal });
  await new Promise((r) => setTimeout(r, 5));
  c1.abort();
  await assert.rejects(x, { name: 'AbortError' });
  assert.deepEqual([...(await y).data].slice(0, 3), [0, 1, 2]);
  // an already-aborted signal fails at once
  await assert.rejects(src.matrix('r1', { ...REQ, q0: 2, signal: AbortSignal.abort() }), { name: 'AbortError' });
});

test('errors carry the server message; bad parameters fail before any request', async () => {
  const srv = fakeServer();
  const src = createHttpSource({ fetch: srv.fetch });
  await assert.rejects(src.manifest('nope'), /unknown run: nope \(HTTP 404\)/);
  await assert.rejects(src.matrix('r1', { ...REQ, layer: 1, agg: 'rollout' }), /bad parameter: agg \(HTTP 400\)/);
  const before = srv.requests.length;
  await assert.rejects(src.matrix('r1', { ...REQ, q1: 5 }), /invalid q1: 5/);
  await assert.rejects(src.matrix('r1', { ...REQ, head: 3 }), /invalid head: 3/);
  assert.equal(srv.requests.length, before);
});

test('manifest (cached for complete runs, with n_rows), runs, grid, capture', async () => {
  const srv = fakeServer({ manifest: { ...MANIFEST, n_rows: undefined } });
  const src = createHttpSource({ fetch: srv.fetch });
  const m = await src.manifest('r1');
  assert.equal(m.n_rows, 4, 'from attention.n_rows');
  await src.manifest('r1');
  assert.equal(srv.requests.length, 1);
  assert.deepEqual((await src.listRuns()).map((r) => r.id), ['r1']);
  const g = await src.grid('r1', 4);
  assert.deepEqual([g.n_layers, g.n_heads, g.size, g.data.length, g.data[0]], [2, 3, 4, 96, 7]);
  assert.ok(g.data instanceof Uint8Array);
  assert.equal(await src.startCapture('Hello', 8), 'j1');
  const post = srv.requests.find((r) => r.url === '/api/capture');
  assert.equal(post.method, 'POST');
  assert.deepEqual(JSON.parse(post.body), { prompt: 'Hello', max_new_tokens: 8 });
  assert.deepEqual(await src.job('j1'), { phase: 'done', done: 4, total: 4, run: 'r2', error: null });
});

test('an incomplete run\'s manifest is asked again', async () => {
  const srv = fakeServer({ manifest: { ...MANIFEST, complete: false } });
  const src = createHttpSource({ fetch: srv.fetch });
  await src.manifest('r1');
  await src.manifest('r1');
  assert.equal(srv.requests.length, 2);
});

test('LRU evicts the least recently used by bytes', () => {
  const lru = createLru(100);
  lru.set('a', 'A', 40);
  lru.set('b', 'B', 40);
  assert.equal(lru.get('a'), 'A'); // a is now the most recent
  lru.set('c', 'C', 40); // evicts b
  assert.equal(lru.get('b'), undefined);
  assert.equal(lru.get('a'), 'A');
  assert.equal(lru.get('c'), 'C');
  assert.equal(lru.bytes, 80);
  lru.set('huge', 'H', 1000);
  assert.equal(lru.get('huge'), undefined, 'larger than the cache: not kept');
  assert.equal(lru.size, 2);
});
