// Shared helpers of the browser tests (tests/web/e2e/*.test.mjs), the viewer benchmark
// (bench/viewer_bench.mjs) and the screenshot script (tools/screenshots.mjs):
// - where things are: the CLI (ATTNSCOPE_CLI or build/attnscope), the fixture models
//   (ATTNSCOPE_FIXTURES or ../shared/fixtures beside the repository), chromium
//   (ATTNSCOPE_CHROMIUM or /usr/bin/chromium);
// - making runs with the CLI (capture, export, render) in a temporary directory;
// - `attnscope serve --port 0`, reading the URL it prints;
// - launching Debian's chromium through playwright-core with a fresh profile;
// - a tiny safetensors reader (the export is the independent reference for the values
//   the page displays) and the observer / observed expectations computed from it.
//
// Missing prerequisites (fixtures, CLI, chromium) skip a test file with a message,
// except under CI=true, where they fail it.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI = path.resolve(process.env.ATTNSCOPE_CLI || path.join(REPO, 'build/attnscope'));
export const FIXTURES = path.resolve(process.env.ATTNSCOPE_FIXTURES || path.join(REPO, '../shared/fixtures'));
export const CHROMIUM = process.env.ATTNSCOPE_CHROMIUM || '/usr/bin/chromium';
export const IN_CI = process.env.CI === 'true';

// The flags the issue asks for; playwright adds --headless and its own defaults.
export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

export function fixtureModel(name) {
  return path.join(FIXTURES, 'models', name, 'model-f32.gguf');
}

// What the browser tests need and do not have, as one message (null: nothing missing).
export function missingPrerequisites({ models = ['qwen2', 'llama'], browser = true } = {}) {
  const missing = [];
  if (!fs.existsSync(CLI)) missing.push(`the attnscope CLI (${CLI}; build it or set ATTNSCOPE_CLI)`);
  for (const m of models) {
    if (!fs.existsSync(fixtureModel(m))) missing.push(`the fixture model ${fixtureModel(m)} (set ATTNSCOPE_FIXTURES)`);
  }
  if (browser) {
    if (!fs.existsSync(CHROMIUM)) missing.push(`chromium (${CHROMIUM}; apt-get install chromium)`);
    try {
      // resolved from the repository root (package.json devDependency)
      fs.accessSync(path.join(REPO, 'node_modules/playwright-core/package.json'));
    } catch {
      missing.push('playwright-core (run npm ci at the repository root)');
    }
  }
  return missing.length ? `missing ${missing.join('; ')}` : null;
}

// The `skip` option of a test file: false when everything is there; else the reason
// (node:test prints it), or, under CI=true, an exception that fails the file.
export function skipUnlessReady(options) {
  const why = missingPrerequisites(options);
  if (!why) return false;
  if (IN_CI) throw new Error(`browser tests cannot run under CI=true: ${why}`);
  console.log(`# skipping: ${why}`);
  return why;
}

// ---- temporary directories and the CLI ---------------------------------------------------

export function tempDir(prefix = 'attnscope-e2e-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeDir(dir) {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}

// Runs the CLI, returns stdout; throws with stderr on a non-zero exit.
export function cli(args, { cwd } = {}) {
  const r = spawnSync(CLI, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`attnscope ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`attnscope ${args.join(' ')} exited with ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

// capture: {model: fixture name or path, prompt | promptFile | tokenIds, n, ctx, precision}
export function capture(out, { model = 'qwen2', prompt, promptFile, tokenIds, n = 4, ctx, precision, extra = [] }) {
  const modelPath = model.includes('/') ? model : fixtureModel(model);
  const args = ['capture', '-m', modelPath, '-n', String(n), '-o', out, '-q', '--overwrite'];
  if (prompt !== undefined) args.push('-p', prompt);
  if (promptFile) args.push('--prompt-file', promptFile);
  if (tokenIds) args.push('--token-ids', tokenIds.join(','));
  if (ctx) args.push('-c', String(ctx));
  if (precision) args.push('--precision', precision);
  cli([...args, ...extra]);
  return out;
}

export const ALL_AGGREGATES = 'none,head-mean,head-max,layer-mean,rollout';

export function exportRun(run, file, { aggregate = ALL_AGGREGATES, layers, heads } = {}) {
  const args = ['export', run, '-o', file, '--aggregate', aggregate];
  if (layers) args.push('--layers', layers);
  if (heads) args.push('--heads', heads);
  cli(args);
  return readSafetensors(file);
}

export function render(runs, out, { maxInlineMb, compare = false } = {}) {
  const args = ['render', ...(compare ? ['--compare'] : []), ...runs, '-o', out, '-q'];
  if (maxInlineMb !== undefined) args.push('--max-inline-mb', String(maxInlineMb));
  cli(args);
  return pathToFileURL(path.join(out, 'index.html')).href;
}

export function readManifest(run) {
  return JSON.parse(fs.readFileSync(path.join(run, 'manifest.json'), 'utf8'));
}

// Servers started by serve() that have not exited: killed when this process exits, so
// that a failing test never leaves one behind (nor keeps node's event loop alive).
const liveServers = new Set();
process.on('exit', () => {
  for (const p of liveServers) p.kill('SIGKILL');
});

// `attnscope serve ARGS --port 0`: resolves {url, proc, stderr(), stop()} once the URL
// line is on stdout and the server answers (GET /api/info). stop() sends SIGTERM and
// resolves with true when the server exited within `graceMs`, else kills it (SIGKILL)
// and resolves with false.
export function serve(args, { timeoutMs = 20000 } = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(CLI, ['serve', ...args, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    liveServers.add(proc);
    proc.on('exit', () => liveServers.delete(proc));
    let out = '';
    let err = '';
    let done = false;
    let urlSeen = false;
    const fail = (e) => {
      if (done) return;
      done = true;
      proc.kill('SIGKILL');
      reject(e);
    };
    const timer = setTimeout(() => fail(new Error(`attnscope serve printed no URL within ${timeoutMs} ms; stderr: ${err}`)), timeoutMs);
    proc.stderr.on('data', (d) => { err += d; });
    proc.on('exit', (code) => fail(new Error(`attnscope serve exited with ${code} before it was ready; stderr: ${err}`)));
    proc.stdout.on('data', async (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl < 0 || urlSeen || done) return;
      urlSeen = true;
      const url = out.slice(0, nl).trim();
      try {
        const res = await fetch(new URL('api/info', url));
        if (!res.ok) throw new Error(`GET /api/info: HTTP ${res.status}`);
      } catch (e) {
        clearTimeout(timer);
        fail(new Error(`attnscope serve printed ${url} but does not answer: ${e.message}`));
        return;
      }
      clearTimeout(timer);
      done = true;
      const stop = (graceMs = 8000) => new Promise((resolveStop) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolveStop(true);
        const kill = setTimeout(() => { proc.kill('SIGKILL'); }, graceMs);
        proc.once('exit', (code, signal) => {
          clearTimeout(kill);
          resolveStop(signal !== 'SIGKILL');
        });
        proc.kill('SIGTERM');
      });
      resolve({ url, proc, stderr: () => err, stop });
    });
  });
}

// ---- the browser ---------------------------------------------------------------------------

// Debian's chromium with a fresh profile directory (removed by close()).
// Returns {context, newPage(), close()}.
export async function launchBrowser({ viewport = { width: 1280, height: 900 } } = {}) {
  const { chromium } = await import(pathToFileURL(path.join(REPO, 'node_modules/playwright-core/index.mjs')).href);
  const profile = tempDir('attnscope-chromium-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport,
    timeout: 60000,
  });
  context.setDefaultTimeout(15000);
  return {
    context,
    async newPage() {
      return watchPage(await context.newPage());
    },
    async close() {
      await context.close().catch(() => {});
      removeDir(profile);
    },
  };
}

// Records what must not happen on a page: dialogs (alert, confirm, prompt: dismissed and
// recorded), uncaught exceptions and console errors. `page.problems()` lists them.
export function watchPage(page) {
  const dialogs = [];
  const errors = [];
  page.on('dialog', (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console error: ${m.text()}`);
  });
  page.dialogs = dialogs;
  page.errors = errors;
  return page;
}

// Every request the page makes, in the order made: [{url, status, bytes, headers, failed}]
// (status, headers and bytes, the response body's size, once known: `settle()` waits for
// them; a cancelled request has `failed` set).
export function recordRequests(page) {
  const list = [];
  const byRequest = new Map();
  const pending = new Set();
  page.on('request', (req) => {
    const entry = { url: req.url(), status: null, bytes: null, headers: {}, failed: null };
    byRequest.set(req, entry);
    list.push(entry);
  });
  page.on('response', (res) => {
    const entry = byRequest.get(res.request());
    if (!entry) return;
    entry.status = res.status();
    entry.headers = res.headers();
  });
  page.on('requestfinished', (req) => {
    const entry = byRequest.get(req);
    if (!entry) return;
    const p = req.response()
      .then((res) => (res ? res.body() : null))
      .then((b) => { if (b) entry.bytes = b.length; }, () => {})
      .finally(() => pending.delete(p));
    pending.add(p);
  });
  page.on('requestfailed', (req) => {
    const entry = byRequest.get(req);
    if (entry) entry.failed = (req.failure() && req.failure().errorText) || 'failed';
  });
  return {
    list,
    clear() { list.length = 0; },
    async settle() {
      await new Promise((r) => setTimeout(r, 50));
      await Promise.all([...pending]);
    },
  };
}

// Waits until `read()` returns a value that `ok(value)` accepts; throws with the last
// value (and ok's explanation, when it returns a string) after timeoutMs.
export async function eventually(read, ok, { timeoutMs = 5000, intervalMs = 25, what = 'condition' } = {}) {
  const end = Date.now() + timeoutMs;
  let last;
  let verdict;
  for (;;) {
    last = await read();
    verdict = ok(last);
    if (verdict === true) return last;
    if (Date.now() > end) break;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}: ${typeof verdict === 'string' ? verdict : JSON.stringify(last).slice(0, 600)}`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- the safetensors reader ------------------------------------------------------------------

// {metadata, names, tensor(name) -> {dtype, shape, data: Float32Array | Int32Array}}.
// Format: u64 little-endian header length N, N bytes of JSON, then the data section.
export function readSafetensors(file) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const base = 8 + n;
  const metadata = header.__metadata__ || {};
  delete header.__metadata__;
  const types = { F32: Float32Array, I32: Int32Array };
  return {
    metadata,
    names: Object.keys(header),
    tensor(name) {
      const t = header[name];
      if (!t) throw new Error(`${file}: no tensor ${name} (has ${Object.keys(header).join(', ')})`);
      const Type = types[t.dtype];
      if (!Type) throw new Error(`${file}: tensor ${name} has dtype ${t.dtype}, this reader knows F32 and I32`);
      const [b, e] = t.data_offsets;
      const bytes = buf.subarray(base + b, base + e);
      // copy: the data section need not be 4-byte aligned in the file buffer
      const data = new Type(new Uint8Array(bytes).buffer);
      return { dtype: t.dtype, shape: t.shape, data };
    },
  };
}

// The reference matrix of a selection {layer, head, agg} as a function (q, k) -> value.
export function referenceMatrix(st, { layer = 0, head = 0, agg = 'none' }) {
  const names = {
    none: `attn.${layer}`, 'head-mean': `attn.${layer}.head_mean`, 'head-max': `attn.${layer}.head_max`,
    rollout: `attn.${layer}.rollout`, 'layer-mean': 'attn.layer_mean',
  };
  const t = st.tensor(names[agg]);
  const n = t.shape[t.shape.length - 1];
  const offset = agg === 'none' ? head * n * n : 0;
  const at = (q, k) => t.data[offset + q * n + k];
  at.n = n;
  return at;
}

// ---- what the text views must show (web/README.md, "Readings") ------------------------------

// The row that stands for token i: a generated token under "producing" reads the row
// before it; null when that row is not stored.
export function rowOf(tokens, i, reading, nRows) {
  const r = reading === 'producing' && tokens[i].generated ? i - 1 : i;
  return r >= 0 && r < nRows ? r : null;
}

// Observer focused on i: {k: A[row(i), k]} for k <= row(i).
export function expectedObserver(A, tokens, i, reading, nRows) {
  const r = rowOf(tokens, i, reading, nRows);
  const out = new Map();
  if (r === null) return out;
  for (let k = 0; k <= r; k++) out.set(k, A(r, k));
  return out;
}

// Observed focused on j: {t: A[row(t), j]} for every t whose row is stored and >= j.
export function expectedObserved(A, tokens, j, reading, nRows) {
  const out = new Map();
  for (let t = 0; t < tokens.length; t++) {
    const r = rowOf(tokens, t, reading, nRows);
    if (r === null || r < j) continue;
    out.set(t, A(r, j));
  }
  return out;
}

// Compares shown weights (Map index -> string) with expected (Map index -> number).
// Returns true, or a string describing the first differences.
export function compareWeights(shown, expected, tol) {
  const problems = [];
  for (const [i, v] of expected) {
    if (!shown.has(i)) problems.push(`token ${i}: not shaded (expected ${v})`);
    else if (!(Math.abs(Number(shown.get(i)) - v) <= tol)) problems.push(`token ${i}: shows ${shown.get(i)}, store ${v}`);
  }
  for (const i of shown.keys()) if (!expected.has(i)) problems.push(`token ${i}: shaded (${shown.get(i)}) but should not be`);
  if (!problems.length) return true;
  return `${problems.length} differences (tolerance ${tol}): ${problems.slice(0, 6).join('; ')}`;
}

// data-weight of every shaded token under `root` (a CSS selector): Map index -> string.
export async function shownWeights(page, root) {
  const pairs = await page.$$eval(`${root} [data-weight]`, (els) => els.map((e) => [Number(e.dataset.tokenIndex), e.dataset.weight]));
  return new Map(pairs);
}

// Waits until the view under `root` shows `expected` (see compareWeights); the returned
// promise rejects with the differences on timeout.
export async function expectWeights(page, root, expected, tol, what) {
  await eventually(() => shownWeights(page, root), (shown) => compareWeights(shown, expected, tol), { what });
}

// Tolerances of "the value it displays": the server sends the stored floats (exact;
// aggregates computed on the fly may differ from the export's by float rounding); a
// static page holds u8 = round(p·255), so within 1/510.
export const TOL_SERVED = 1e-6;
export const TOL_STATIC = 1 / 510 + 1e-6;

// ---- the page: opening a run, the text views, the header controls (hooks: web/README.md) ----

export const OBSERVER = '.text-view[data-view=observer]';
export const OBSERVED = '.text-view[data-view=observed]';

export const token = (view, i) => `${view} .tokens [data-token-index="${i}"]`;

// The served page of one run (or two, compare) by run directory name: ids come from /api/runs.
export async function servedRunUrl(server, names, { compare = false, tab } = {}) {
  const res = await fetch(new URL('api/runs', server.url));
  const { runs } = await res.json();
  const ids = [].concat(names).map((name) => {
    const r = runs.find((x) => x.name === name || x.id === name);
    if (!r) throw new Error(`the server lists no run ${name}: ${JSON.stringify(runs.map((x) => x.id))}`);
    return r.id;
  });
  const q = new URLSearchParams(ids.map((id) => ['run', id]));
  if (compare) q.set('compare', '1');
  return `${server.url}?${q}${tab ? `#${tab}` : ''}`;
}

// Opens `url` and waits for the first view (text, or the tab in the address) to draw.
export async function openRun(page, url, { tab = 'text' } = {}) {
  await page.goto(url.includes('#') ? url : `${url}#${tab}`);
  if (tab === 'text') await page.waitForSelector(`${OBSERVER} [data-token-index]`);
  else await page.waitForSelector(`[data-panel="${tab}"]:not([hidden])`);
  return page;
}

export async function showTab(page, tab) {
  await page.click(`[data-tab="${tab}"]`);
  await page.waitForSelector(`[data-panel="${tab}"]:not([hidden])`);
}

// Selects {layer, head, agg} with the header's menus, as a user would.
export async function select(page, { layer, head, agg }) {
  if (agg && agg !== 'none') await page.selectOption('select[name=head]', agg);
  else if (head !== undefined) await page.selectOption('select[name=head]', String(head));
  if (layer !== undefined && agg !== 'layer-mean') await page.selectOption('select[name=layer]', String(layer));
  const s = await page.evaluate(() => {
    const { layer: l, head: h, agg: a } = window.attnscope.state.get();
    return { layer: l, head: h, agg: a };
  });
  if (agg) assert.equal(s.agg, agg);
  if (layer !== undefined && agg !== 'layer-mean') assert.equal(s.layer, layer);
  if ((!agg || agg === 'none') && head !== undefined) assert.equal(s.head, head);
}

export async function setReading(page, reading) {
  await page.check(`input[name=reading][value=${reading}]`);
  await eventually(() => page.evaluate(() => window.attnscope.state.get().reading), (r) => r === reading, { what: `reading ${reading}` });
}

// The focused token of a text view: {index, frozen} or null (from the page's classes).
export async function focusOf(page, view) {
  return page.$$eval(`${view} .tok.focus`, (els) => (els.length ? { index: Number(els[0].dataset.tokenIndex), frozen: els[0].classList.contains('frozen') } : null));
}

// Moves the mouse onto the page's title (away from every view), without leaving the page.
export async function mouseAway(page) {
  const box = await page.locator('header.top').boundingBox();
  await page.mouse.move(box.x + 2, box.y + 2);
}

// Pairs of legend tick labels under `root` whose boxes overlap (text drawn over text):
// ["0.03|0.0359", ...].
export async function legendOverlaps(page, root) {
  return page.$$eval(`${root} .legend:not(.legend-empty) .legend-tick`, (els) => {
    const boxes = els.map((e) => ({ text: e.textContent, r: e.getBoundingClientRect() }));
    const out = [];
    for (let i = 1; i < boxes.length; i++) {
      const a = boxes[i - 1];
      const b = boxes[i];
      if (a.r.width && b.r.width && a.r.right > b.r.left + 0.5) out.push(`${a.text}|${b.text}`);
    }
    return out;
  });
}
