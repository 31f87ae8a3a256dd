// The static export (`attnscope render`) from file://, as one self-contained file and as
// chunks (a tiny --max-inline-mb): both open with no server, show the store's values, and
// the chunked page loads only the chunk files the current selection needs.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  skipUnlessReady, tempDir, removeDir, capture, exportRun, render, readManifest, launchBrowser, recordRequests,
  referenceMatrix, expectedObserver, expectWeights, eventually, TOL_STATIC, OBSERVER, token, openRun, select, showTab, mouseAway,
} from './helpers.mjs';

const skip = skipUnlessReady({ models: ['llama'] });
const env = {};

before(async () => {
  if (skip) return;
  env.dir = tempDir();
  env.run = capture(path.join(env.dir, 'cat'), { model: 'llama', prompt: 'The cat sat on the mat. The dog sat on the log.', n: 8 });
  env.manifest = readManifest(env.run);
  env.ref = exportRun(env.run, path.join(env.dir, 'cat.safetensors'));
  env.single = path.join(env.dir, 'single');
  env.chunked = path.join(env.dir, 'chunked');
  env.singleUrl = render([env.run], env.single);
  env.chunkedUrl = render([env.run], env.chunked, { maxInlineMb: 0.001 });
  env.browser = await launchBrowser();
});

after(async () => {
  if (env.browser) await env.browser.close();
  removeDir(env.dir);
});

const observer = (sel, i) => expectedObserver(referenceMatrix(env.ref, sel), env.manifest.tokens, i, 'producing', env.manifest.attention.n_rows);

// file:// requests of the page, relative to the page's directory (data: URLs left out).
function fileRequests(rec, dir) {
  const base = `file://${dir}/`;
  return rec.list.filter((r) => r.url.startsWith('file:')).map((r) => (r.url.startsWith(base) ? r.url.slice(base.length) : r.url));
}

describe('static export from file://', { skip }, () => {
  it('one file: index.html alone holds the page and every chunk; every view opens', async () => {
    assert.deepEqual(fs.readdirSync(env.single), ['index.html'], 'no data/ folder for a small run');
    const page = await env.browser.newPage();
    const rec = recordRequests(page);
    await openRun(page, env.singleUrl);
    await page.hover(token(OBSERVER, 10));
    await expectWeights(page, OBSERVER, observer({ layer: 0, head: 0, agg: 'none' }, 10), TOL_STATIC, 'observer on #10');
    for (const tab of ['matrix', 'grid', 'flow', 'text']) await showTab(page, tab);
    await page.waitForSelector('[data-panel=grid] button[data-layer="2"][data-head="3"]', { state: 'attached' });
    await select(page, { layer: 2, agg: 'rollout' });
    await page.hover(token(OBSERVER, 12));
    await expectWeights(page, OBSERVER, observer({ layer: 2, head: 0, agg: 'rollout' }, 12), TOL_STATIC, 'rollout through layer 2');
    await rec.settle();
    assert.deepEqual(fileRequests(rec, env.single), ['index.html'], 'nothing but the page is read from disk');
    assert.deepEqual(page.dialogs, []);
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  it('chunks: only the chunk files the selection needs are requested, each once', async () => {
    const runId = fs.readdirSync(path.join(env.chunked, 'data'))[0];
    const files = fs.readdirSync(path.join(env.chunked, 'data', runId)).sort();
    assert.ok(files.length >= 3 * 4 + 3, `one file per chunk: ${files.join(' ')}`);
    const d = `data/${runId}/`;
    const page = await env.browser.newPage();
    const rec = recordRequests(page);
    await openRun(page, env.chunkedUrl);
    await rec.settle();
    assert.deepEqual(fileRequests(rec, env.chunked), ['index.html', `${d}manifest.js`], 'opening loads the manifest only');

    await page.hover(token(OBSERVER, 10));
    await expectWeights(page, OBSERVER, observer({ layer: 0, head: 0, agg: 'none' }, 10), TOL_STATIC, 'observer on #10, layer 0 head 0');
    await page.hover(token(OBSERVER, 20));
    await expectWeights(page, OBSERVER, observer({ layer: 0, head: 0, agg: 'none' }, 20), TOL_STATIC, 'observer on #20');
    const seen = () => fileRequests(rec, env.chunked).slice(2);
    assert.deepEqual(seen(), [`${d}L0_H0-4.js`], 'layer 0 head 0: its head group only');

    await select(page, { layer: 2, head: 1 });
    await expectWeights(page, OBSERVER, observer({ layer: 2, head: 1, agg: 'none' }, 20), TOL_STATIC, 'layer 2 head 1');
    await select(page, { layer: 2, head: 3 });
    await expectWeights(page, OBSERVER, observer({ layer: 2, head: 3, agg: 'none' }, 20), TOL_STATIC, 'layer 2 head 3 (same chunk)');
    assert.deepEqual(seen(), [`${d}L0_H0-4.js`, `${d}L2_H0-4.js`], 'layer 2: one more chunk');

    // the head menu first (layer 2's head mean), then the layer menu (layer 1's)
    await select(page, { layer: 1, agg: 'head-mean' });
    await expectWeights(page, OBSERVER, observer({ layer: 1, head: 0, agg: 'head-mean' }, 20), TOL_STATIC, 'layer 1 head mean');
    await select(page, { agg: 'layer-mean' });
    await expectWeights(page, OBSERVER, observer({ layer: 0, head: 0, agg: 'layer-mean' }, 20), TOL_STATIC, 'layer mean');
    await rec.settle();
    assert.deepEqual(seen(), [`${d}L0_H0-4.js`, `${d}L2_H0-4.js`, `${d}L2_head-mean.js`, `${d}L1_head-mean.js`, `${d}L-1_layer-mean.js`]);

    await mouseAway(page);
    await showTab(page, 'grid');
    await page.waitForSelector('[data-panel=grid] button[data-layer="0"][data-head="0"]');
    await rec.settle();
    assert.deepEqual(seen().slice(5), [`${d}grid.js`], 'the grid tab loads grid.js only');
    const counts = {};
    for (const f of fileRequests(rec, env.chunked)) counts[f] = (counts[f] || 0) + 1;
    assert.deepEqual(Object.entries(counts).filter(([, c]) => c > 1), [], 'no chunk file requested twice');
    assert.ok(seen().length < files.length - 2, 'most chunk files were never requested');
    assert.deepEqual(page.dialogs, []);
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  it('chunks: a missing chunk file gives an error naming it (no hang, the rest still works)', async () => {
    const runId = fs.readdirSync(path.join(env.chunked, 'data'))[0];
    const missing = path.join(env.chunked, 'data', runId, 'L1_H0-4.js');
    fs.renameSync(missing, `${missing}.away`);
    try {
      const page = await env.browser.newPage();
      await openRun(page, env.chunkedUrl);
      await select(page, { layer: 1, head: 0 });
      await page.hover(token(OBSERVER, 5));
      const text = await eventually(() => page.textContent(`${OBSERVER} .readout`), (t) => /L1_H0-4\.js/.test(t) || `readout: ${t}`, { what: 'an error naming L1_H0-4.js' });
      assert.match(text, /error/);
      await select(page, { layer: 0, head: 0 });
      await expectWeights(page, OBSERVER, observer({ layer: 0, head: 0, agg: 'none' }, 5), TOL_STATIC, 'layer 0 still loads');
      await page.close();
    } finally {
      fs.renameSync(`${missing}.away`, missing);
    }
  });
});
