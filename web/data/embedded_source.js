// EmbeddedSource: the data source of a static page written by `attnscope render`
// (docs/viewer-api.md, "Static export"). Run data arrives as chunks through
// window.attnscopeChunk(chunk). index.html defines a bootstrap attnscopeChunk that
// queues chunks in window.attnscopeChunks before any module runs; installChunkHook()
// takes the queue over. A chunk that is not on the page is loaded on first use from
//
//   data/<run>/manifest.js            {kind: "manifest"}
//   data/<run>/L<l>_H<h0>-<h1>.js      {kind: "heads"}  heads h0 .. h1-1, h0 = 8·floor(h/8),
//                                     h1 = min(h0 + 8, n_heads)  (h1 is exclusive, as in the chunk)
//   data/<run>/L<l>_<agg>.js           {kind: "agg"}    layer-mean: L-1_layer-mean.js
//   data/<run>/grid.js                 {kind: "grid"}
//
// by inserting <script src>, with a timeout and an error naming the file.

import { checkManifest, checkMatrixRequest } from 'attnscope/data/source.js';
import { base64ToBytes, decodeValues, sliceTriangle, triangleSize } from 'attnscope/data/decode.js';

export const HEAD_GROUP = 8;
const DEFAULT_TIMEOUT_MS = 20000;

// ---- the registry of received chunks --------------------------------------------------

export function chunkKey(c) {
  switch (c.kind) {
    case 'manifest':
      return `${c.run}|manifest`;
    case 'heads':
      return `${c.run}|heads|${c.layer}|${c.head0}`;
    case 'agg':
      return `${c.run}|agg|${c.agg === 'layer-mean' ? -1 : c.layer}|${c.agg}`;
    case 'grid':
      return `${c.run}|grid`;
    default:
      throw new Error(`invalid chunk kind: ${c.kind}`);
  }
}

export function createChunkRegistry() {
  const chunks = new Map(); // key -> chunk (data decoded lazily)
  const waiters = new Map(); // key -> [resolve]
  return {
    add(chunk) {
      if (!chunk || typeof chunk.run !== 'string') throw new Error('invalid chunk: no run');
      const key = chunkKey(chunk);
      chunks.set(key, chunk);
      for (const resolve of waiters.get(key) || []) resolve(chunk);
      waiters.delete(key);
    },
    get(key) {
      return chunks.get(key);
    },
    has(key) {
      return chunks.has(key);
    },
    keys() {
      return [...chunks.keys()];
    },
  };
}

// Routes window.attnscopeChunk into `registry`, taking over the chunks that the
// bootstrap script in index.html queued before the modules ran.
export function installChunkHook(registry, target = globalThis) {
  const queued = Array.isArray(target.attnscopeChunks) ? target.attnscopeChunks : [];
  target.attnscopeChunk = (chunk) => {
    try {
      registry.add(chunk);
    } catch (e) {
      console.error(`attnscope: ${e.message}`);
    }
  };
  for (const c of queued) target.attnscopeChunk(c);
  target.attnscopeChunks = { push: (c) => target.attnscopeChunk(c) };
}

// <script src=url>, resolved on load, rejected on error or after timeoutMs.
export function loadScriptTag(url, timeoutMs = DEFAULT_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    const el = document.createElement('script');
    const done = (error) => {
      clearTimeout(timer);
      el.onload = el.onerror = null;
      el.remove(); // the chunk, if any, has registered itself
      if (error) reject(error);
      else resolve();
    };
    const timer = setTimeout(() => done(new Error(`timed out after ${Math.round(timeoutMs / 1000)} s loading ${url}`)), timeoutMs);
    el.onload = () => done(null);
    el.onerror = () => done(new Error(`could not load ${url} (is the data/ folder next to index.html?)`));
    el.src = url;
    document.head.appendChild(el);
  });
}

export function chunkFile(run, c) {
  const dir = `data/${encodeURIComponent(run)}/`;
  switch (c.kind) {
    case 'manifest':
      return `${dir}manifest.js`;
    case 'heads':
      return `${dir}L${c.layer}_H${c.head0}-${c.head1}.js`;
    case 'agg':
      return `${dir}L${c.agg === 'layer-mean' ? -1 : c.layer}_${c.agg}.js`;
    case 'grid':
      return `${dir}grid.js`;
    default:
      throw new Error(`invalid chunk kind: ${c.kind}`);
  }
}

// ---- the source ------------------------------------------------------------------------

export function createEmbeddedSource({
  runs = [],
  registry = null,
  loadScript = loadScriptTag,
  target = globalThis,
} = {}) {
  if (!registry) {
    registry = createChunkRegistry();
    installChunkHook(registry, target);
  }
  const loading = new Map(); // file -> Promise
  const decoded = new Map(); // chunk key -> {values, factor}

  // The chunk described by `want`, from the page or loaded from its file.
  async function need(run, want) {
    const key = chunkKey({ run, ...want });
    if (registry.has(key)) return registry.get(key);
    const file = chunkFile(run, want);
    if (!loading.has(file)) {
      const p = loadScript(file);
      loading.set(file, p);
      p.catch(() => loading.delete(file)); // allow a retry
    }
    await loading.get(file);
    if (!registry.has(key)) throw new Error(`${file} loaded but did not hold the expected data`);
    return registry.get(key);
  }

  async function manifest(runId) {
    const chunk = await need(runId, { kind: 'manifest' });
    return checkManifest(chunk.manifest, runId);
  }

  // {values, factor} of a chunk, decoded once; checks it holds `count` values.
  function values(key, chunk, count, what, encoding = chunk.encoding || 'u8') {
    let v = decoded.get(key);
    if (!v) {
      if (chunk.data == null) throw new Error(`invalid data for ${what}: none`);
      const bytes = typeof chunk.data === 'string' ? base64ToBytes(chunk.data) : new Uint8Array(chunk.data);
      v = decodeValues(bytes, encoding);
      if (v.values.length !== count) {
        throw new Error(`invalid data for ${what}: ${v.values.length} values, expected ${count}`);
      }
      decoded.set(key, v);
      chunk.data = null; // the base64 text is no longer needed
    }
    return v;
  }

  async function matrix(runId, req) {
    const m = await manifest(runId);
    const r = checkMatrixRequest(req, m);
    const n = m.n_rows;
    const T = triangleSize(n);
    const n_heads = (m.attention || m.model).n_heads;
    let tri;
    let factor;
    let offset = 0;
    if (r.agg === 'none') {
      const head0 = Math.floor(r.head / HEAD_GROUP) * HEAD_GROUP;
      const head1 = Math.min(head0 + HEAD_GROUP, n_heads);
      const chunk = await need(runId, { kind: 'heads', layer: r.layer, head0, head1 });
      const h1 = Number.isInteger(chunk.head1) ? chunk.head1 : head1;
      const key = chunkKey({ run: runId, ...chunk });
      ({ values: tri, factor } = values(key, chunk, (h1 - chunk.head0) * T, `layer ${r.layer}, heads ${chunk.head0}-${h1 - 1}`));
      offset = (r.head - chunk.head0) * T;
    } else {
      const layer = r.agg === 'layer-mean' ? -1 : r.layer;
      const chunk = await need(runId, { kind: 'agg', layer, agg: r.agg });
      const key = chunkKey({ run: runId, ...chunk });
      ({ values: tri, factor } = values(key, chunk, T, r.agg === 'layer-mean' ? 'layer-mean' : `layer ${layer} ${r.agg}`));
    }
    const view = offset ? tri.subarray(offset, offset + T) : tri;
    return sliceTriangle(view, n, r, factor);
  }

  async function grid(runId, size) {
    const m = await manifest(runId);
    const chunk = await need(runId, { kind: 'grid' });
    const key = chunkKey({ run: runId, kind: 'grid' });
    const shape = m.attention || m.model;
    const s = chunk.size; // the page holds one grid size, whatever `size` asked: result.size says which
    if (!(Number.isInteger(size) && size >= 1)) throw new Error(`invalid size: ${size}`);
    const { values: data } = values(key, chunk, shape.n_layers * shape.n_heads * s * s, 'grid', 'u8');
    return { n_layers: shape.n_layers, n_heads: shape.n_heads, size: s, data };
  }

  async function listRuns() {
    const out = [];
    for (const id of runs) {
      const m = await manifest(id);
      out.push({
        id,
        name: id,
        model: (m.model && (m.model.name || m.model.file_name)) || '',
        prompt: m.prompt || '',
        n_tokens: m.tokens.length,
        complete: !!m.complete,
      });
    }
    return out;
  }

  return { kind: 'embedded', listRuns, manifest, matrix, grid, registry };
}
