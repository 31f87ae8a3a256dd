// The text views in real Chromium, served (`attnscope serve`) and static (`attnscope
// render`, one file, opened from file://): every hovered token shades exactly the values
// the store holds (the exported safetensors is the reference), for both views and both
// readings; freezing, independent freezes, layer / head / aggregate switches; keyboard.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  skipUnlessReady, tempDir, removeDir, capture, exportRun, render, serve, readManifest, launchBrowser,
  referenceMatrix, expectedObserver, expectedObserved, expectWeights, shownWeights, compareWeights, sleep, eventually, recordRequests,
  TOL_SERVED, TOL_STATIC, legendOverlaps, OBSERVER, OBSERVED, token, servedRunUrl, openRun, select, setReading, focusOf, mouseAway,
} from './helpers.mjs';

const skip = skipUnlessReady({ models: ['llama'] });

const env = {};

before(async () => {
  if (skip) return;
  env.dir = tempDir();
  // llama: a BOS special token, 3 layers × 4 heads, 15 prompt + 8 generated tokens
  env.run = capture(path.join(env.dir, 'cat'), { model: 'llama', prompt: 'The cat sat on the mat. The dog sat on the log.', n: 8 });
  env.manifest = readManifest(env.run);
  env.tokens = env.manifest.tokens;
  env.nRows = env.manifest.attention.n_rows;
  env.ref = exportRun(env.run, path.join(env.dir, 'cat.safetensors'));
  env.server = await serve([env.run]);
  env.staticUrl = render([env.run], path.join(env.dir, 'static'));
  env.browser = await launchBrowser();
});

after(async () => {
  if (env.browser) await env.browser.close();
  if (env.server) await env.server.stop();
  removeDir(env.dir);
});

const A = (sel) => referenceMatrix(env.ref, sel);
const obs = (sel, i, reading = 'producing') => expectedObserver(A(sel), env.tokens, i, reading, env.nRows);
const obd = (sel, j, reading = 'producing') => expectedObserved(A(sel), env.tokens, j, reading, env.nRows);

for (const mode of ['served', 'static']) {
  describe(`text views (${mode})`, { skip }, () => {
    const tol = mode === 'served' ? TOL_SERVED : TOL_STATIC;
    let page;
    let rec;
    const overlaps = new Set(); // legend tick labels drawn over each other, seen while hovering

    before(async () => {
      page = await env.browser.newPage();
      rec = recordRequests(page);
      const url = mode === 'served' ? await servedRunUrl(env.server, 'cat') : env.staticUrl;
      await openRun(page, url);
    });
    after(async () => {
      assert.deepEqual(page.dialogs, [], 'no dialog opened');
      assert.deepEqual(page.errors, [], 'no page or console error');
      await page.close();
    });

    it('run text: one element per token, the first generated token marked', async () => {
      const n = await page.$$eval(`${OBSERVER} [data-token-index]`, (els) => els.length);
      assert.equal(n, env.tokens.length);
      const gen = await page.$$eval(`${OBSERVER} .tok.gen`, (els) => els.map((e) => Number(e.dataset.tokenIndex)));
      assert.deepEqual(gen, env.tokens.map((t, i) => (t.generated ? i : -1)).filter((i) => i >= 0));
    });

    it('hovering every token: observer shows its row ("while producing"), observed its column', async () => {
      const sel = { layer: 0, head: 0, agg: 'none' };
      for (let i = 0; i < env.tokens.length; i++) {
        await page.hover(token(OBSERVER, i));
        await expectWeights(page, OBSERVER, obs(sel, i), tol, `observer on #${i}`);
        assert.equal((await shownWeights(page, OBSERVED)).size, 0, 'the observed view keeps no focus of its own');
        for (const o of await legendOverlaps(page, OBSERVER)) overlaps.add(`#${i}: ${o}`);
      }
      for (let j = 0; j < env.tokens.length; j++) {
        await page.hover(token(OBSERVED, j));
        await expectWeights(page, OBSERVED, obd(sel, j), tol, `observed on #${j}`);
        assert.equal((await shownWeights(page, OBSERVER)).size, 0, 'the observer view keeps no focus of its own');
        for (const o of await legendOverlaps(page, OBSERVED)) overlaps.add(`#${j}: ${o}`);
      }
      if (mode === 'served') {
        // a short run (up to 512 positions) is read as the selection's whole matrix, once
        await rec.settle();
        const matrices = rec.list.filter((r) => r.url.includes('/matrix?')).map((r) => [new URL(r.url).search, r.bytes]);
        const n = env.nRows;
        assert.deepEqual(matrices, [[`?layer=0&head=0&agg=none&q0=0&q1=${n}&k0=0&k1=${n}&stride=1`, 4 * n * n]], 'one request: layer 0 head 0, the whole matrix');
      }
      // the default reading really is "while producing": the first generated token shows
      // the last prompt row, not its own
      const first = env.tokens.findIndex((t) => t.generated);
      assert.equal(obs(sel, first).size, first, 'first generated token: row of the previous position');
      await mouseAway(page);
    });

    // Tick labels must never be drawn over each other: with a maximum of 0.0359 (seen in a
    // real run) a fixed-gap rule once printed "0.03" over the start of "0.0359".
    // (once: the legend is the same code on both pages)
    if (mode === 'served') it('legend tick labels never overlap (the page legend and stylesheet; while hovering)', async () => {
      const crafted = await page.evaluate(async (maxima) => {
        const { createLegend } = await import('attnscope/ui/legend.js');
        const { createScale } = await import('attnscope/color/scale.js');
        const slot = document.querySelector('.text-view[data-view=observer] .legend').parentElement;
        const out = [];
        for (const max of maxima) {
          for (const type of ['linear', 'log']) {
            const holder = document.createElement('div');
            slot.appendChild(holder);
            const legend = createLegend(holder);
            legend.update(createScale({ type, min: type === 'log' ? max / 1000 : 0, max }), 'test');
            const r = [...holder.querySelectorAll('.legend-tick')].map((e) => ({ text: e.textContent, ...e.getBoundingClientRect().toJSON() }));
            for (let i = 1; i < r.length; i++) if (r[i - 1].right > r[i].left + 0.5) out.push(`${type} max ${max}: "${r[i - 1].text}" over "${r[i].text}"`);
            legend.destroy();
            holder.remove();
          }
        }
        return out;
      }, [0.0195, 0.0329, 0.0335, 0.0359, 0.0436, 0.136, 0.27, 0.332, 0.38, 0.57, 1]);
      const all = [...crafted, ...overlaps];
      assert.deepEqual(all, [], `legend tick labels drawn over each other (web/ui/legend.js legendTicks): ${all.slice(0, 8).join('; ')}`);
    });

    it('reading "at its own position": generated tokens show their own row and column', async () => {
      await setReading(page, 'own');
      const sel = { layer: 0, head: 0, agg: 'none' };
      const first = env.tokens.findIndex((t) => t.generated);
      for (let i = first - 1; i < env.tokens.length; i++) {
        await page.hover(token(OBSERVER, i));
        await expectWeights(page, OBSERVER, obs(sel, i, 'own'), tol, `observer (own) on #${i}`);
        await page.hover(token(OBSERVED, i));
        await expectWeights(page, OBSERVED, obd(sel, i, 'own'), tol, `observed (own) on #${i}`);
      }
      await setReading(page, 'producing');
      await mouseAway(page);
    });

    it('double-click freezes; mouse moves do not change a frozen view; the views freeze independently', async () => {
      const sel = { layer: 0, head: 0, agg: 'none' };
      const last = env.tokens.length - 1;
      await page.dblclick(token(OBSERVER, 7));
      assert.deepEqual(await focusOf(page, OBSERVER), { index: 7, frozen: true });
      await expectWeights(page, OBSERVER, obs(sel, 7), tol, 'observer frozen on #7');
      for (const i of [2, 12, last, 0]) await page.hover(token(OBSERVER, i));
      await mouseAway(page);
      await sleep(200);
      assert.deepEqual(await focusOf(page, OBSERVER), { index: 7, frozen: true });
      assert.equal(compareWeights(await shownWeights(page, OBSERVER), obs(sel, 7), tol), true, 'still row 7 after the mouse moved');

      // the observed view still follows the mouse, then freezes on its own token
      await page.hover(token(OBSERVED, 3));
      await expectWeights(page, OBSERVED, obd(sel, 3), tol, 'observed on #3 while the observer is frozen');
      await page.dblclick(token(OBSERVED, 3));
      assert.deepEqual(await focusOf(page, OBSERVED), { index: 3, frozen: true });
      await page.hover(token(OBSERVED, 10));
      await page.hover(token(OBSERVER, 12));
      await sleep(200);
      assert.equal(compareWeights(await shownWeights(page, OBSERVED), obd(sel, 3), tol), true, 'observed stays frozen on #3');
      assert.equal(compareWeights(await shownWeights(page, OBSERVER), obs(sel, 7), tol), true, 'observer stays frozen on #7');

      // another double-click releases the observer only
      await page.dblclick(token(OBSERVER, 12));
      assert.equal((await focusOf(page, OBSERVER)).frozen, false);
      await page.hover(token(OBSERVER, 14));
      await expectWeights(page, OBSERVER, obs(sel, 14), tol, 'observer follows the mouse again');
      assert.deepEqual(await focusOf(page, OBSERVED), { index: 3, frozen: true });
      assert.equal(compareWeights(await shownWeights(page, OBSERVED), obd(sel, 3), tol), true, 'observed still frozen');
      await page.dblclick(token(OBSERVED, 3));
      assert.equal((await focusOf(page, OBSERVED)).frozen, false);
      await mouseAway(page);
      await eventually(() => focusOf(page, OBSERVED), (f) => f === null, { what: 'the observed focus to clear after the mouse left' });
    });

    it('switching layer and head changes the frozen views to the store values of the new selection', async () => {
      const last = env.tokens.length - 1;
      await page.dblclick(token(OBSERVER, last));
      await page.dblclick(token(OBSERVED, 1));
      await mouseAway(page);
      const before0 = obs({ layer: 0, head: 0, agg: 'none' }, last);
      for (const sel of [{ layer: 1, head: 2, agg: 'none' }, { layer: 2, head: 3, agg: 'none' }, { layer: 2, head: 0, agg: 'none' }]) {
        await select(page, sel);
        await expectWeights(page, OBSERVER, obs(sel, last), tol, `observer on #${last}, layer ${sel.layer} head ${sel.head}`);
        await expectWeights(page, OBSERVED, obd(sel, 1), tol, `observed on #1, layer ${sel.layer} head ${sel.head}`);
        const differs = [...obs(sel, last)].some(([k, v]) => Math.abs(v - before0.get(k)) > 2 * tol);
        assert.ok(differs, `layer ${sel.layer} head ${sel.head} differs from layer 0 head 0 (else this test proves nothing)`);
      }
    });

    it('aggregates (head mean, head max, layer mean, rollout) equal the exported aggregate tensors', async () => {
      const last = env.tokens.length - 1;
      for (const sel of [
        { layer: 1, agg: 'head-mean' }, { layer: 2, agg: 'head-max' }, { agg: 'layer-mean' },
        { layer: 0, agg: 'rollout' }, { layer: 2, agg: 'rollout' },
      ]) {
        await select(page, sel);
        const full = { layer: sel.layer ?? 0, head: 0, agg: sel.agg };
        await expectWeights(page, OBSERVER, obs(full, last), tol, `observer, ${sel.agg} ${sel.layer ?? ''}`);
        await expectWeights(page, OBSERVED, obd(full, 1), tol, `observed, ${sel.agg} ${sel.layer ?? ''}`);
      }
      await select(page, { layer: 0, head: 0 });
      await page.dblclick(token(OBSERVER, last));
      await page.dblclick(token(OBSERVED, 1));
      await mouseAway(page);
    });

    it('keyboard: arrows, Home and End move the focused token; Enter freezes; Escape clears', async () => {
      const sel = { layer: 0, head: 0, agg: 'none' };
      await mouseAway(page);
      await page.focus(`${OBSERVER} .tokens`);
      await page.keyboard.press('ArrowRight');
      assert.deepEqual(await focusOf(page, OBSERVER), { index: 0, frozen: false });
      for (const [key, want] of [['ArrowRight', 1], ['ArrowRight', 2], ['ArrowRight', 3], ['ArrowLeft', 2], ['End', env.tokens.length - 1], ['ArrowLeft', env.tokens.length - 2], ['Home', 0]]) {
        await page.keyboard.press(key);
        assert.deepEqual(await focusOf(page, OBSERVER), { index: want, frozen: false }, `after ${key}`);
        await expectWeights(page, OBSERVER, obs(sel, want), tol, `observer on #${want} after ${key}`);
      }
      await page.keyboard.press('ArrowDown');
      const down = await focusOf(page, OBSERVER);
      assert.ok(down.index > 0, `ArrowDown moves to a token on the next line (got ${JSON.stringify(down)})`);
      await page.keyboard.press('Enter');
      assert.equal((await focusOf(page, OBSERVER)).frozen, true, 'Enter freezes');
      await page.keyboard.press('ArrowRight');
      assert.deepEqual(await focusOf(page, OBSERVER), { index: down.index + 1, frozen: true }, 'arrows move a frozen focus');
      await expectWeights(page, OBSERVER, obs(sel, down.index + 1), tol, 'frozen focus moved by the keyboard');
      await page.keyboard.press('Escape');
      assert.equal(await focusOf(page, OBSERVER), null, 'Escape clears');
      assert.equal((await shownWeights(page, OBSERVER)).size, 0);
      // the observed view has its own keyboard focus
      await page.focus(`${OBSERVED} .tokens`);
      await page.keyboard.press('End');
      await expectWeights(page, OBSERVED, obd(sel, env.tokens.length - 1), tol, 'observed on the last token');
      await page.keyboard.press('Escape');
    });
  });
}
