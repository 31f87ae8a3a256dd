// The compare view, static (`render --compare`, file://) and served (?run=a&run=b&compare=1):
// hovering a token shades, on each side, the row of that run's store (the other side at
// the same position inside the shared prefix, nothing after it); a click freezes.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  skipUnlessReady, tempDir, removeDir, capture, exportRun, render, serve, readManifest, launchBrowser,
  referenceMatrix, expectedObserver, shownWeights, compareWeights, eventually, sleep, TOL_SERVED, TOL_STATIC,
  servedRunUrl, openRun, select, mouseAway,
} from './helpers.mjs';

const skip = skipUnlessReady({ models: ['llama'] });
const env = {};

before(async () => {
  if (skip) return;
  env.dir = tempDir();
  env.runs = [
    capture(path.join(env.dir, 'dog'), { model: 'llama', prompt: 'The cat sat on the mat. The dog sat on the log.', n: 4 }),
    capture(path.join(env.dir, 'bird'), { model: 'llama', prompt: 'The cat sat on the mat. A bird flew over the old house.', n: 4 }),
  ];
  env.manifests = env.runs.map(readManifest);
  env.refs = env.runs.map((r, i) => exportRun(r, path.join(env.dir, `${i}.safetensors`)));
  const [a, b] = env.manifests.map((m) => m.tokens.map((t) => t.id));
  env.prefix = 0;
  while (env.prefix < Math.min(a.length, b.length) && a[env.prefix] === b[env.prefix]) env.prefix++;
  env.staticUrl = render(env.runs, path.join(env.dir, 'static'), { compare: true });
  env.server = await serve([env.dir]);
  env.browser = await launchBrowser();
});

after(async () => {
  if (env.browser) await env.browser.close();
  if (env.server) await env.server.stop();
  removeDir(env.dir);
});

const side = (s) => `[data-panel=compare] .compare-tokens[data-side=${s}]`;
const tok = (s, i) => `[data-panel=compare] [data-side=${s}] [data-token-index="${i}"]`;

// What side `s` (0 = a, 1 = b) shows when token i of side `from` is focused.
function expected(sel, from, s, i) {
  const m = env.manifests[s];
  if (s !== from && i >= env.prefix) return new Map();
  return expectedObserver(referenceMatrix(env.refs[s], sel), m.tokens, i, 'producing', m.attention.n_rows);
}

// Both sides' shaded tokens (the prefix block and the tail block of a side together).
async function sideWeights(page, s) {
  const name = s === 0 ? 'a' : 'b';
  const maps = await Promise.all([shownWeights(page, `${side(name)}.compare-prefix`), shownWeights(page, `${side(name)}.compare-tail`)]);
  return new Map([...maps[0], ...maps[1]]);
}

async function expectSides(page, sel, from, i, tol) {
  for (const s of [0, 1]) {
    const want = expected(sel, from, s, i);
    await eventually(() => sideWeights(page, s), (w) => compareWeights(w, want, tol), { what: `side ${'ab'[s]} for token ${i} of side ${'ab'[from]}` });
  }
}

for (const mode of ['static', 'served']) {
  describe(`compare view (${mode})`, { skip }, () => {
    const tol = mode === 'served' ? TOL_SERVED : TOL_STATIC;
    let page;
    before(async () => {
      assert.ok(env.prefix >= 5, `the runs share a prefix (${env.prefix} tokens)`);
      page = await env.browser.newPage();
      const url = mode === 'static' ? env.staticUrl : await servedRunUrl(env.server, ['dog', 'bird'], { compare: true });
      await openRun(page, url, { tab: 'compare' });
      await page.waitForSelector(tok('b', 1));
    });
    after(async () => {
      assert.deepEqual(page.dialogs, []);
      assert.deepEqual(page.errors, []);
      await page.close();
    });

    it('shows the shared prefix and both prompts', async () => {
      assert.equal(await page.getAttribute('[data-panel=compare] .attnscope-compare', 'data-prefix'), String(env.prefix));
      const prompts = await page.$$eval('[data-panel=compare] .compare-prompt-text', (els) => els.map((e) => e.textContent));
      assert.deepEqual(prompts, env.manifests.map((m) => m.prompt));
    });

    it('hovering a token shades both sides with their own store values', async () => {
      const sel = { layer: 0, head: 0, agg: 'none' };
      for (const [from, name] of [[0, 'a'], [1, 'b']]) {
        const n = env.manifests[from].tokens.length;
        for (const i of [1, env.prefix - 1, env.prefix, n - 2, n - 1]) {
          await page.hover(tok(name, i));
          await expectSides(page, sel, from, i, tol);
        }
      }
      await select(page, { layer: 2, head: 1 });
      await page.hover(tok('a', env.prefix - 2));
      await expectSides(page, { layer: 2, head: 1, agg: 'none' }, 0, env.prefix - 2, tol);
      await select(page, { layer: 1, agg: 'rollout' });
      await page.hover(tok('b', env.prefix + 2));
      await expectSides(page, { layer: 1, head: 0, agg: 'rollout' }, 1, env.prefix + 2, tol);
      await select(page, { layer: 0, head: 0 });
      await mouseAway(page);
    });

    it('a click freezes the focus across mouse moves; another click releases it', async () => {
      const sel = { layer: 0, head: 0, agg: 'none' };
      await page.click(tok('a', 4));
      await expectSides(page, sel, 0, 4, tol);
      await page.hover(tok('b', 9));
      await page.hover(tok('a', 2));
      await mouseAway(page);
      await sleep(200);
      for (const s of [0, 1]) assert.equal(compareWeights(await sideWeights(page, s), expected(sel, 0, s, 4), tol), true, `side ${'ab'[s]} stays frozen`);
      await page.click(tok('a', 4));
      await page.hover(tok('b', 9));
      await expectSides(page, sel, 1, 9, tol);
      await mouseAway(page);
    });
  });
}
