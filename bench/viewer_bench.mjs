// Viewer benchmark (not a test: timed tests are flaky): time to first paint, hover-to-
// shading latency and bytes transferred, in Debian's chromium driven by playwright-core,
// for a served run and a static export. Prints a Markdown table for docs/performance.md.
//
//   node bench/viewer_bench.mjs [--served-run DIR] [--static-run DIR] [--hovers 50] [--loads 3]
//
// Without --served-run / --static-run the runs are made in $WORK (default
// /tmp/attnscope-viewer-bench) from a random-weight model written by
// build/tools/attnscope-synth-model: the Llama-3.2-1B shape (32 query heads, 8 KV heads,
// head size 64) with 32 layers instead of 16, Q8_0, so that the attention is 32 layers ×
// 32 heads like Llama-3-8B's: 1,008 prompt + 16 generated tokens (served) and 240 + 16
// (static). Making them takes a few minutes with today's scalar kernels.
//
// Measures, per page:
// - first contentful paint (performance 'paint' entry) and "text drawn": when the first
//   token element of the text view exists, plus one animation frame (a MutationObserver
//   installed before the page's scripts);
// - hover latency: the real mouse moves onto a token of the observer view; from the
//   pointerover event's timeStamp to the MutationObserver callback that sees the
//   data-weight attributes of the new focus (median and 90th percentile of N hovers over
//   distinct tokens spread over the run);
// - bytes: response bodies (served) or the files read (file://) for the load, and for
//   the N hovers.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  REPO, CLI, cli, render, serve, launchBrowser, recordRequests, servedRunUrl, readManifest, sleep, OBSERVER,
} from '../tests/web/e2e/helpers.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const WORK = process.env.WORK || '/tmp/attnscope-viewer-bench';
const HOVERS = Number(opt('hovers', 50));
const LOADS = Number(opt('loads', 3));

function log(msg) {
  process.stderr.write(`viewer_bench: ${msg}\n`);
}

// ---- the runs ---------------------------------------------------------------------------

function ensureModel() {
  const model = path.join(WORK, 'llama-3.2-1b-32L-Q8_0.gguf');
  if (!fs.existsSync(model)) {
    log(`writing ${model}`);
    const r = spawnSync(path.join(REPO, 'build/tools/attnscope-synth-model'),
      ['--shape', 'llama-3.2-1b', '--type', 'Q8_0', '--layers', '32', '-o', model], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('attnscope-synth-model failed');
  }
  return model;
}

function ensureRun(name, promptTokens, genTokens) {
  const run = path.join(WORK, name);
  if (fs.existsSync(path.join(run, 'manifest.json')) && readManifest(run).complete) return run;
  const model = ensureModel();
  // ids 32..126 are single-byte tokens of the synthetic vocabulary
  let seed = 1;
  const ids = Array.from({ length: promptTokens }, () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return 32 + (seed % 95);
  });
  log(`capturing ${run} (${promptTokens} + ${genTokens} tokens; minutes)`);
  const t0 = Date.now();
  cli(['capture', '-m', model, '--token-ids', ids.join(','), '-n', String(genTokens), '--ignore-eos', '-o', run, '-q', '--overwrite']);
  log(`captured in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return run;
}

// ---- measuring one page -----------------------------------------------------------------

// Installed before the page's own scripts: records when the text view first has tokens,
// and times hovers (pointerover -> data-weight mutations of the observer view).
const INIT = () => {
  const b = { textDrawn: null, hovers: [], pending: null };
  window.__bench = b;
  const inObserver = (el) => el.closest && el.closest('.text-view[data-view=observer]');
  const mo = new MutationObserver((records) => {
    const now = performance.now();
    if (b.textDrawn === null && document.querySelector('.text-view[data-view=observer] [data-token-index]')) {
      requestAnimationFrame(() => { b.textDrawn = performance.now(); });
    }
    const p = b.pending;
    if (!p || p.start === null || p.seen !== null) return;
    // a data-weight written after the pointerover, while the new token has the focus
    const wrote = records.some((r) => r.type === 'attributes' && r.attributeName === 'data-weight' && r.target.hasAttribute('data-weight') && inObserver(r.target));
    const focus = document.querySelector('.text-view[data-view=observer] .tok.focus');
    if (wrote && focus && Number(focus.dataset.tokenIndex) === p.index) {
      p.seen = now;
      b.hovers.push(now - p.start);
      p.resolve(now - p.start);
    }
  });
  mo.observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-weight'] });
  document.addEventListener('pointerover', (e) => {
    const t = e.target.closest && e.target.closest('.text-view[data-view=observer] [data-token-index]');
    if (t && b.pending && Number(t.dataset.tokenIndex) === b.pending.index && b.pending.start === null) b.pending.start = e.timeStamp;
  }, true);
  // arm(i) before moving the mouse onto token i; wait() resolves with the latency (ms)
  b.arm = (index) => {
    b.pending = { index, start: null, seen: null };
    b.pending.promise = new Promise((resolve) => { b.pending.resolve = resolve; });
  };
  b.wait = (timeoutMs) => Promise.race([b.pending.promise, new Promise((r) => setTimeout(() => r(null), timeoutMs))]);
};

function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

const median = (xs) => quantile(xs, 0.5);

// bytes of a request list: response bodies; file:// ones from the file system
function bytesOf(list) {
  let total = 0;
  for (const r of list) {
    if (r.url.startsWith('file:')) {
      try { total += fs.statSync(new URL(r.url)).size; } catch { /* not a file */ }
    } else if (r.bytes) total += r.bytes;
  }
  return total;
}

async function measure(browser, url, nTokens) {
  const loads = [];
  let page;
  let rec;
  for (let i = 0; i < LOADS; i++) {
    if (page) await page.close();
    page = await browser.newPage();
    await page.addInitScript(INIT);
    rec = recordRequests(page);
    await page.goto(`${url}#text`);
    await page.waitForFunction(() => window.__bench.textDrawn !== null, null, { timeout: 60000 });
    await sleep(300);
    await rec.settle();
    const t = await page.evaluate(() => ({
      fcp: (performance.getEntriesByType('paint').find((e) => e.name === 'first-contentful-paint') || {}).startTime,
      text: window.__bench.textDrawn,
    }));
    loads.push({ ...t, bytes: bytesOf(rec.list), requests: rec.list.length });
  }
  // hovers over distinct tokens spread over the run (the last page stays open)
  rec.clear();
  const step = Math.max(1, Math.floor(nTokens / HOVERS));
  const latencies = [];
  for (let h = 0; h < HOVERS; h++) {
    const index = Math.min(nTokens - 1, 1 + h * step + (h % 3));
    const el = page.locator(`${OBSERVER} [data-token-index="${index}"]`);
    await el.evaluate((e) => e.scrollIntoView({ block: 'center' }));
    const box = await el.boundingBox();
    await page.evaluate((i) => window.__bench.arm(i), index);
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    const latency = await page.evaluate(() => window.__bench.wait(10000));
    if (latency === null) throw new Error(`hover on token ${index}: no new shading within 10 s`);
    latencies.push(latency);
  }
  await rec.settle();
  const errors = page.errors.slice();
  await page.close();
  return {
    fcp: median(loads.map((l) => l.fcp)),
    text: median(loads.map((l) => l.text)),
    loadBytes: loads[loads.length - 1].bytes,
    loadRequests: loads[loads.length - 1].requests,
    hoverMedian: median(latencies),
    hoverP90: quantile(latencies, 0.9),
    hoverBytes: bytesOf(rec.list),
    hoverRequests: rec.list.length,
    errors,
  };
}

// ---- main -------------------------------------------------------------------------------

fs.mkdirSync(WORK, { recursive: true });
const servedRun = opt('served-run') || ensureRun('run-32x32-1024', 1008, 16);
const staticRun = opt('static-run') || ensureRun('run-32x32-256', 240, 16);
const shape = (run) => {
  const m = readManifest(run);
  return { n: m.tokens.length, L: m.attention.n_layers, H: m.attention.n_heads, model: m.model.name };
};

const browser = await launchBrowser({ viewport: { width: 1280, height: 900 } });
const rows = [];
try {
  for (const [label, run] of [['served', servedRun], ['served', staticRun]]) {
    const server = await serve([run]);
    try {
      const s = shape(run);
      log(`${label} ${run}`);
      rows.push({ label, s, r: await measure(browser, await servedRunUrl(server, path.basename(run)), s.n) });
    } finally {
      await server.stop();
    }
  }
  const outDir = path.join(WORK, 'static-256');
  fs.rmSync(outDir, { recursive: true, force: true });
  const t0 = Date.now();
  const url = render([staticRun], outDir);
  const renderSeconds = (Date.now() - t0) / 1000;
  const chunked = fs.existsSync(path.join(outDir, 'data'));
  const pageMb = fs.statSync(path.join(outDir, 'index.html')).size / 1e6;
  log(`static ${outDir} (render ${renderSeconds.toFixed(1)} s, ${chunked ? 'chunks' : 'one file'}, index.html ${pageMb.toFixed(1)} MB)`);
  const s = shape(staticRun);
  rows.push({ label: `static (file://, ${chunked ? 'chunks' : 'one file'})`, s, r: await measure(browser, url, s.n) });
} finally {
  await browser.close();
}

const kb = (b) => `${(b / 1024).toFixed(0)} KB`;
const ms = (x) => (x === undefined ? 'n/a' : `${x.toFixed(0)}`);
const ms1 = (x) => `${x.toFixed(1)}`;
console.log(`| page | run (layers × heads × tokens) | first contentful paint ms | text drawn ms | hover median ms | hover p90 ms | load: bytes (requests) | ${HOVERS} hovers: bytes (requests) |`);
console.log('|---|---|---|---|---|---|---|---|');
for (const { label, s, r } of rows) {
  console.log(`| ${label} | ${s.L} × ${s.H} × ${s.n} | ${ms(r.fcp)} | ${ms(r.text)} | ${ms1(r.hoverMedian)} | ${ms1(r.hoverP90)} | ${kb(r.loadBytes)} (${r.loadRequests}) | ${kb(r.hoverBytes)} (${r.hoverRequests}) |`);
  if (r.errors.length) console.log(`<!-- page errors: ${r.errors.join('; ')} -->`);
}
console.log(`\nMachine: ${os.cpus().length} × ${os.cpus()[0].model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GB, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}; ${LOADS} loads (median), ${HOVERS} hovers; chromium ${spawnSync('/usr/bin/chromium', ['--version'], { encoding: 'utf8' }).stdout.trim()}; CLI ${CLI}`);
