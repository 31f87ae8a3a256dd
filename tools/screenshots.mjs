// Screenshots of every view for the docs (docs/images/*.png, 1200 px wide), from real
// runs captured and served by the built CLI, in Debian's chromium. Re-runnable:
//
//   node tools/screenshots.mjs [--model MODEL.gguf] [--out docs/images] [--head LAYER,HEAD]
//
// The model defaults to models/attnscope-demo-kjv-f16.gguf when it exists (trained on
// the King James Bible; the prompt says a verse twice and the views show its induction
// head, layer 1 head 0), else the llama fixture (random weights, 3 layers × 4 heads;
// ATTNSCOPE_FIXTURES). Without --head (and for other models), the text and matrix views
// show the head whose attention from the focused token is the most focused (lowest
// entropy over the keys after the first, read from the exported safetensors). Writes
// text-observer.png, text-observed.png, matrix.png, grid.png, flow.png and compare.png.

import fs from 'node:fs';
import path from 'node:path';
import {
  REPO, capture, exportRun, referenceMatrix, fixtureModel, tempDir, removeDir, serve, launchBrowser, servedRunUrl, openRun, showTab, select,
  mouseAway, eventually, sleep, OBSERVER, OBSERVED, token,
} from '../tests/web/e2e/helpers.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const demo = path.join(REPO, 'models/attnscope-demo-kjv-f16.gguf');
const model = path.resolve(opt('model', fs.existsSync(demo) ? demo : fixtureModel('llama')));
const out = path.resolve(opt('out', path.join(REPO, 'docs/images')));
const headOpt = opt('head', model === demo ? '1,0' : '');
const WIDTH = 1200;
const HEIGHT = 760;

// Two prompts sharing a long prefix (for compare); the first is the main run.
const PROMPTS = model === demo ? [
  'And God said, Let there be light: and there was light. And God saw the light, that it was good. And God said, Let there be light: and there was light. And God saw',
  'And God said, Let there be light: and there was light. And God saw the light, that it was good. And God said, Let there be a firmament: and there was a firmament. And God saw',
] : [
  'The cat sat on the mat because the mat was warm. Where did the cat sit? The cat sat on the',
  'The cat sat on the mat because the mat was warm. Where did the dog sit? The dog sat on the',
];

// The (layer, head) whose row `r` is the most focused on one key after the first.
function mostFocusedHead(st, manifest, r) {
  let best = null;
  for (let layer = 0; layer < manifest.attention.n_layers; layer++) {
    for (let head = 0; head < manifest.attention.n_heads; head++) {
      const A = referenceMatrix(st, { layer, head, agg: 'none' });
      let sum = 0;
      for (let k = 1; k <= r; k++) sum += A(r, k);
      let h = 0;
      for (let k = 1; k <= r; k++) {
        const p = A(r, k) / sum;
        if (p > 0) h -= p * Math.log2(p);
      }
      if (!best || h < best.h) best = { layer, head, h };
    }
  }
  return best;
}

fs.mkdirSync(out, { recursive: true });
const dir = tempDir('attnscope-screenshots-');
const runs = PROMPTS.map((p, i) => capture(path.join(dir, i ? 'b' : 'a'), { model, prompt: p, n: 8 }));
const server = await serve([dir]);
const browser = await launchBrowser({ viewport: { width: WIDTH, height: HEIGHT } });
const shots = [];

async function shot(page, name, { fullPage = false } = {}) {
  await mouseAway(page); // a frozen focus stays
  await sleep(250);
  const file = path.join(out, name);
  await page.screenshot({ path: file, type: 'png', fullPage });
  if (page.errors.length) throw new Error(`${name}: the page reported errors: ${page.errors.join('; ')}`);
  shots.push(`${file} (${(fs.statSync(file).size / 1024).toFixed(0)} KB)`);
}

try {
  const page = await browser.newPage();
  const url = await servedRunUrl(server, 'a');
  const manifest = JSON.parse(fs.readFileSync(path.join(runs[0], 'manifest.json'), 'utf8'));
  const n = manifest.tokens.length;
  const firstGenerated = manifest.tokens.findIndex((t) => t.generated);
  let best;
  if (headOpt) {
    const [layer, head] = headOpt.split(',').map(Number);
    best = { layer, head };
    console.log(`head: layer ${layer}, head ${head} (--head)`);
  } else {
    best = mostFocusedHead(exportRun(runs[0], path.join(dir, 'a.safetensors'), { aggregate: 'none' }), manifest, firstGenerated - 1);
    console.log(`head: layer ${best.layer}, head ${best.head} (${best.h.toFixed(2)} bits)`);
  }

  // text views: one at a time, each frozen on a token
  await openRun(page, url);
  await select(page, { layer: best.layer, head: best.head });
  await page.click('.text-layout button[data-layout=observer]');
  await page.dblclick(token(OBSERVER, firstGenerated));
  await eventually(() => page.locator(`${OBSERVER} [data-weight]`).count(), (c) => c > 0 || 'no shading', { what: 'observer shading' });
  await shot(page, 'text-observer.png');

  await page.click('.text-layout button[data-layout=observed]');
  await page.dblclick(token(OBSERVED, 1));
  await eventually(() => page.locator(`${OBSERVED} [data-weight]`).count(), (c) => c > 0 || 'no shading', { what: 'observed shading' });
  await shot(page, 'text-observed.png');
  await page.click('.text-layout button[data-layout=both]');

  // matrix: the same head, a hovered cell with its readout
  await showTab(page, 'matrix');
  const canvas = page.locator('[data-panel=matrix] canvas.matrix-canvas');
  await eventually(() => page.textContent('[data-panel=matrix] .matrix-status'), (t) => !/loading/.test(t) || t, { what: 'the matrix' });
  await page.evaluate(() => window.scrollTo(0, 0));
  const box = await canvas.boundingBox();
  const size = box.width - 92;
  await page.mouse.move(box.x + 92 + size * 0.3, box.y + 76 + size * 0.45);
  await eventually(() => page.getAttribute('[data-panel=matrix] .matrix-readout', 'data-value'), (v) => v !== null || 'no readout', { what: 'the readout' });
  await page.screenshot({ path: path.join(out, 'matrix.png'), type: 'png', fullPage: true });
  shots.push(`${path.join(out, 'matrix.png')} (${(fs.statSync(path.join(out, 'matrix.png')).size / 1024).toFixed(0)} KB)`);

  // grid: every head, one selected
  await showTab(page, 'grid');
  await page.waitForSelector('[data-panel=grid] button[data-layer="0"][data-head="0"]');
  await shot(page, 'grid.png');

  // flow: the last token
  await page.evaluate((t) => window.attnscope.state.set({ selectedToken: t }), n - 1);
  await showTab(page, 'flow');
  await page.waitForSelector('[data-panel=flow] g.flow-row[data-layer="rollout"]');
  await eventually(() => page.textContent('[data-panel=flow] .flow-status'), (t) => t === '' || t, { what: 'the flow view' });
  await shot(page, 'flow.png');
  await page.close();

  // compare: the two runs, a token of the shared prefix frozen
  const cmp = await browser.newPage();
  await openRun(cmp, await servedRunUrl(server, ['a', 'b'], { compare: true }), { tab: 'compare' });
  await select(cmp, { layer: best.layer, head: best.head });
  await cmp.waitForSelector('[data-panel=compare] [data-side=a] [data-token-index="5"]');
  const prefix = Number(await cmp.getAttribute('[data-panel=compare] .attnscope-compare', 'data-prefix'));
  await cmp.click(`[data-panel=compare] [data-side=a] [data-token-index="${prefix - 2}"]`);
  await eventually(() => cmp.locator('[data-panel=compare] [data-side=b] [data-weight]').count(), (c) => c > 0 || 'no shading', { what: 'compare shading' });
  await shot(cmp, 'compare.png', { fullPage: true });
  await cmp.close();
} finally {
  await browser.close();
  await server.stop();
  removeDir(dir);
}
console.log(`model: ${model}\n${shots.join('\n')}`);
