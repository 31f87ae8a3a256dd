// The served viewer (`attnscope serve`) on a long run (850 positions): it loads slices,
// never the whole run for one row; the matrix view's hover readout shows the store's
// value and zooming changes the requested stride; a grid click selects the layer and
// head in every view.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  skipUnlessReady, tempDir, removeDir, capture, exportRun, serve, readManifest, launchBrowser, recordRequests,
  referenceMatrix, expectedObserver, expectedObserved, expectWeights, eventually, sleep, TOL_SERVED,
  OBSERVER, OBSERVED, token, servedRunUrl, openRun, showTab, mouseAway,
} from './helpers.mjs';

const skip = skipUnlessReady({ models: ['llama'] });
const env = {};

before(async () => {
  if (skip) return;
  env.dir = tempDir();
  const words = Array.from({ length: 300 }, (_, i) => `word${i % 50}`).join(' ');
  const promptFile = path.join(env.dir, 'prompt.txt');
  fs.writeFileSync(promptFile, words);
  // the fixture's training context is 256; RoPE runs past it (the values are what they are)
  env.run = capture(path.join(env.dir, 'long'), { model: 'llama', promptFile, n: 8, ctx: 1024 });
  env.manifest = readManifest(env.run);
  env.n = env.manifest.attention.n_rows;
  env.ref = exportRun(env.run, path.join(env.dir, 'long.safetensors'), { aggregate: 'none,head-mean' });
  env.server = await serve([env.run]);
  env.url = await servedRunUrl(env.server, 'long');
  env.browser = await launchBrowser();
});

after(async () => {
  if (env.browser) await env.browser.close();
  if (env.server) await env.server.stop();
  removeDir(env.dir);
});

// /api/runs/<id>/matrix requests as {layer, head, agg, q0, q1, k0, k1, stride, bytes, rows, cols}.
function matrixRequests(rec) {
  return rec.list.filter((r) => /\/api\/runs\/[^/]+\/matrix\?/.test(r.url)).map((r) => {
    const q = Object.fromEntries(new URL(r.url).searchParams);
    const out = { bytes: r.bytes, rows: Number(r.headers['x-rows']), cols: Number(r.headers['x-cols']), status: r.status, failed: r.failed };
    for (const [k, v] of Object.entries(q)) out[k] = k === 'agg' ? v : Number(v);
    return out;
  });
}

const A = (sel) => referenceMatrix(env.ref, sel);

describe('served viewer, long run', { skip }, () => {
  let page;
  let rec;
  before(async () => {
    assert.ok(env.n > 512, `the run is long enough for row-by-row loading (${env.n} positions)`);
    page = await env.browser.newPage();
    rec = recordRequests(page);
    await openRun(page, env.url);
  });
  after(async () => {
    assert.deepEqual(page.dialogs, []);
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  it('text views load one row (observer) or one column (observed) per hover, never the whole matrix', async () => {
    const sel = { layer: 0, head: 0, agg: 'none' };
    const tokens = env.manifest.tokens;
    await rec.settle();
    assert.deepEqual(matrixRequests(rec), [], 'opening the run asks for no attention');
    for (const i of [5, 300, 700, env.n - 1]) {
      rec.clear();
      await page.hover(token(OBSERVER, i));
      await expectWeights(page, OBSERVER, expectedObserver(A(sel), tokens, i, 'producing', env.n), TOL_SERVED, `observer on #${i}`);
      await rec.settle();
      const r = tokens[i].generated ? i - 1 : i;
      const reqs = matrixRequests(rec);
      assert.deepEqual(reqs.map(({ q0, q1, k0, k1, stride }) => ({ q0, q1, k0, k1, stride })), [{ q0: r, q1: r + 1, k0: 0, k1: r + 1, stride: 1 }], `one row for #${i}`);
      assert.deepEqual([reqs[0].rows, reqs[0].cols, reqs[0].bytes], [1, r + 1, 4 * (r + 1)], 'X-Rows, X-Cols and the body size of one float32 row');
    }
    for (const j of [3, 600]) {
      rec.clear();
      await page.hover(token(OBSERVED, j));
      await expectWeights(page, OBSERVED, expectedObserved(A(sel), tokens, j, 'producing', env.n), TOL_SERVED, `observed on #${j}`);
      await rec.settle();
      const reqs = matrixRequests(rec);
      assert.deepEqual(reqs.map(({ q0, q1, k0, k1, stride }) => ({ q0, q1, k0, k1, stride })), [{ q0: j, q1: env.n, k0: j, k1: j + 1, stride: 1 }], `one column for #${j}`);
      assert.equal(reqs[0].bytes, 4 * (env.n - j));
    }
    // hovering an already loaded row again is served from the cache
    rec.clear();
    await page.hover(token(OBSERVER, 300));
    await expectWeights(page, OBSERVER, expectedObserver(A(sel), tokens, 300, 'producing', env.n), TOL_SERVED, 'observer on #300 again');
    await rec.settle();
    assert.equal(matrixRequests(rec).length, 0, 'cached');
    await mouseAway(page);
  });

  it('matrix view: the readout shows the store value of the hovered cell; zoom lowers the stride', async () => {
    rec.clear();
    await showTab(page, 'matrix');
    const canvas = page.locator('[data-panel=matrix] canvas.matrix-canvas');
    assert.equal(await canvas.getAttribute('data-rows'), String(env.n));
    assert.equal(await canvas.getAttribute('data-cols'), String(env.n));
    await eventually(async () => matrixRequests(rec), (r) => r.some((x) => x.q0 === 0 && x.q1 === env.n) || 'no full-view request yet', { what: 'the overview request' });
    await rec.settle();
    const first = matrixRequests(rec);
    const overview = first.find((x) => x.q0 === 0 && x.q1 === env.n && x.k0 === 0 && x.k1 === env.n);
    assert.ok(overview.stride > 1, `zoomed out, ${env.n} positions are max-pooled (stride ${overview.stride})`);
    for (const x of first) {
      assert.equal(x.bytes, 4 * Math.ceil((x.q1 - x.q0) / x.stride) * Math.ceil((x.k1 - x.k0) / x.stride), `response size of ${JSON.stringify(x)}`);
      assert.ok(x.stride > 1, 'zoomed out, no request at full resolution');
    }

    // hover: the readout names the cell under the pointer and its exact value
    await canvas.evaluate((c) => c.scrollIntoView({ block: 'end' }));
    const box = await canvas.boundingBox();
    const LEFT = 92;
    const TOP = 76;
    const size = box.width - LEFT;
    const cellAt = (px, py) => ({ q: Math.floor((py / size) * env.n), k: Math.floor((px / size) * env.n) });
    const readout = '[data-panel=matrix] .matrix-readout';
    const readCell = () => page.$eval(readout, (e) => ({ ...e.dataset }));
    const sel = { layer: 0, head: 0, agg: 'none' };
    for (const [px, py] of [[size * 0.2, size * 0.7], [size * 0.5, size * 0.52], [size * 0.05, size * 0.95]]) {
      await page.mouse.move(box.x + LEFT + px, box.y + TOP + py);
      const want = cellAt(px, py);
      const d = await eventually(readCell, (c) => (c.value !== undefined && Number(c.query) === want.q && Number(c.key) === want.k) || JSON.stringify(c), { what: `readout of cell ${JSON.stringify(want)}` });
      assert.ok(Math.abs(Number(d.value) - A(sel)(want.q, want.k)) <= TOL_SERVED, `readout ${d.value} = store ${A(sel)(want.q, want.k)} at ${JSON.stringify(want)}`);
    }

    // zoom in around the centre: the stride goes down to 1 and only a window is requested
    rec.clear();
    const cx = box.x + LEFT + size / 2;
    const cy = box.y + TOP + size / 2;
    await page.mouse.move(cx, cy);
    // one large wheel step (a small one already reaches stride 1 with a window that
    // covers most of the matrix, which later steps then reuse)
    await page.mouse.wheel(0, -2000);
    const small = (x) => x.stride === 1 && x.q1 - x.q0 < env.n / 4 && x.k1 - x.k0 < env.n / 4;
    await eventually(async () => matrixRequests(rec), (r) => r.some(small) || JSON.stringify(r), { what: 'a small window at stride 1 after zooming in' });
    await sleep(200);
    await rec.settle();
    const zoomed = matrixRequests(rec);
    const views = zoomed.filter((x) => !(x.q1 - x.q0 === 1 && x.k1 - x.k0 === 1)); // not the readout's exact value
    assert.equal(views.length, 1, `one request for the zoomed view: ${JSON.stringify(views)}`);
    const last = views[0];
    assert.ok(small(last), `zoomed in: a window at full resolution, not the matrix: ${JSON.stringify(last)}`);
    assert.equal(last.failed, null, 'the last request completed');
    for (const x of zoomed.filter((z) => !z.failed)) assert.equal(x.bytes, 4 * Math.ceil((x.q1 - x.q0) / x.stride) * Math.ceil((x.k1 - x.k0) / x.stride));
    await page.mouse.move(cx + 3, cy + 7);
    const d = await eventually(readCell, (c) => c.value !== undefined || JSON.stringify(c), { what: 'the readout when zoomed in' });
    const [q, k] = [Number(d.query), Number(d.key)];
    assert.ok(Math.abs(q - env.n / 2) < 60 && Math.abs(k - env.n / 2) < 60, `zoomed around the centre: cell ${q}, ${k}`);
    const expected = k > q ? 0 : A(sel)(q, k);
    assert.ok(Math.abs(Number(d.value) - expected) <= TOL_SERVED, `zoomed readout ${d.value} = store ${expected}`);

    // reset: back to the overview stride, from the cache
    await page.click('[data-panel=matrix] .matrix-reset');
    await eventually(() => page.textContent('[data-panel=matrix] .matrix-status'), (t) => t.includes(`${overview.stride}×${overview.stride}`) || t, { what: 'the zoomed-out status line' });
    await mouseAway(page);
  });

  it('a grid click selects that layer and head in every view', async () => {
    rec.clear();
    await showTab(page, 'grid');
    await page.waitForSelector('[data-panel=grid] button[data-layer="2"][data-head="3"]');
    await rec.settle();
    const grids = rec.list.filter((r) => r.url.includes('/grid?'));
    assert.equal(grids.length, 1, 'one grid request');
    assert.equal(grids[0].bytes, 3 * 4 * 64 * 64, 'uint8 (layers, heads, 64, 64)');
    await page.click('[data-panel=grid] button[data-layer="1"][data-head="2"]');
    assert.equal(await page.getAttribute('[data-panel=grid] button[data-layer="1"][data-head="2"]', 'aria-pressed'), 'true');
    assert.equal(await page.inputValue('select[name=layer]'), '1');
    assert.equal(await page.inputValue('select[name=head]'), '2');
    const sel = { layer: 1, head: 2, agg: 'none' };

    // matrix: its requests and its readout follow
    rec.clear();
    await showTab(page, 'matrix');
    const canvas = page.locator('[data-panel=matrix] canvas.matrix-canvas');
    await canvas.evaluate((c) => c.scrollIntoView({ block: 'end' }));
    const box = await canvas.boundingBox();
    const size = box.width - 92;
    await page.mouse.move(box.x + 92 + size * 0.4, box.y + 76 + size * 0.6);
    const d = await eventually(() => page.$eval('[data-panel=matrix] .matrix-readout', (e) => ({ ...e.dataset })), (c) => c.value !== undefined || JSON.stringify(c), { what: 'matrix readout after the grid click' });
    assert.ok(Math.abs(Number(d.value) - A(sel)(Number(d.query), Number(d.key))) <= TOL_SERVED, `matrix readout ${d.value} is layer 1 head 2's`);
    await rec.settle();
    const reqs = matrixRequests(rec);
    assert.ok(reqs.length > 0 && reqs.every((x) => x.layer === 1 && x.head === 2 && x.agg === 'none'), `matrix requests are for layer 1 head 2: ${JSON.stringify(reqs)}`);
    assert.match(await page.textContent('[data-panel=matrix] .matrix-title'), /layer 1, head 2/);

    // text views: rows of layer 1 head 2
    await mouseAway(page);
    await showTab(page, 'text');
    await page.hover(token(OBSERVER, 400));
    await expectWeights(page, OBSERVER, expectedObserver(A(sel), env.manifest.tokens, 400, 'producing', env.n), TOL_SERVED, 'observer after the grid click');

    // flow: shows the mean over the heads of each layer, for every layer
    await showTab(page, 'flow');
    await page.waitForSelector('[data-panel=flow] g.flow-row[data-layer="1"]');
    assert.equal(await page.inputValue('select[name=head]'), '2', 'still head 2 after visiting every view');
    await mouseAway(page);
  });
});
