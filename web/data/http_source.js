// HttpSource: the data source of `attnscope serve` (docs/viewer-api.md, "HTTP API").
// Binary endpoints become Float32Array / Uint8Array; recent slices are kept in an LRU
// cache; identical requests in flight are shared, and a request whose every caller
// has aborted (MatrixRequest.signal) is cancelled.

import { checkManifest, checkMatrixRequest } from 'attnscope/data/source.js';

const DEFAULT_CACHE_BYTES = 64 << 20;

// A least-recently-used map bounded by the total byteLength of its values.
export function createLru(maxBytes) {
  const map = new Map(); // key -> {value, bytes}
  let total = 0;
  return {
    get(key) {
      const e = map.get(key);
      if (!e) return undefined;
      map.delete(key);
      map.set(key, e); // most recent last
      return e.value;
    },
    set(key, value, bytes) {
      if (map.has(key)) {
        total -= map.get(key).bytes;
        map.delete(key);
      }
      if (bytes > maxBytes) return;
      map.set(key, { value, bytes });
      total += bytes;
      for (const [k, e] of map) {
        if (total <= maxBytes) break;
        map.delete(k);
        total -= e.bytes;
      }
    },
    get size() {
      return map.size;
    },
    get bytes() {
      return total;
    },
    clear() {
      map.clear();
      total = 0;
    },
  };
}

function abortError() {
  return new DOMException('The request was superseded', 'AbortError');
}

export function createHttpSource({ base = '', fetch: fetchFn = globalThis.fetch.bind(globalThis), cacheBytes = DEFAULT_CACHE_BYTES } = {}) {
  const cache = createLru(cacheBytes);
  const inflight = new Map(); // url -> {promise, controller, waiters}
  const manifests = new Map(); // run id -> Promise<Manifest> (complete runs only)
  const runUrl = (id) => `${base}/api/runs/${encodeURIComponent(id)}`;

  async function failure(response, url) {
    let message = `HTTP ${response.status}`;
    try {
      const body = await response.json();
      if (body && typeof body.error === 'string') message = `${body.error} (HTTP ${response.status})`;
    } catch {
      // not JSON: keep the status
    }
    return new Error(`${message}: ${url}`);
  }

  async function getJson(url, init) {
    const response = await fetchFn(url, init);
    if (!response.ok) throw await failure(response, url);
    return response.json();
  }

  // GET url, parse with `parse(response) -> {value, bytes}`, share and cache the result.
  function getCached(url, parse, signal) {
    const hit = cache.get(url);
    if (hit) return Promise.resolve(hit);
    if (signal && signal.aborted) return Promise.reject(abortError());
    let entry = inflight.get(url);
    if (!entry) {
      const controller = new AbortController();
      entry = { controller, waiters: 0, promise: null };
      entry.promise = (async () => {
        const response = await fetchFn(url, { signal: controller.signal });
        if (!response.ok) throw await failure(response, url);
        const { value, bytes } = await parse(response, url);
        cache.set(url, value, bytes);
        return value;
      })().finally(() => {
        if (inflight.get(url) === entry) inflight.delete(url);
      });
      inflight.set(url, entry);
    }
    entry.waiters++;
    if (!signal) return entry.promise;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        entry.waiters--;
        if (entry.waiters === 0) {
          inflight.delete(url); // a later caller starts afresh
          entry.controller.abort();
        }
        reject(abortError());
      };
      signal.addEventListener('abort', onAbort, { once: true });
      entry.promise.then(
        (v) => {
          signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        (e) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      );
    });
  }

  async function parseMatrix(response, url) {
    const rows = Number(response.headers.get('X-Rows'));
    const cols = Number(response.headers.get('X-Cols'));
    const buffer = await response.arrayBuffer();
    if (!Number.isInteger(rows) || !Number.isInteger(cols) || buffer.byteLength !== rows * cols * 4) {
      throw new Error(`invalid matrix response: ${buffer.byteLength} bytes for X-Rows ${rows}, X-Cols ${cols}: ${url}`);
    }
    return { value: { rows, cols, data: new Float32Array(buffer) }, bytes: buffer.byteLength };
  }

  async function parseGrid(response, url) {
    const n_layers = Number(response.headers.get('X-Layers'));
    const n_heads = Number(response.headers.get('X-Heads'));
    const size = Number(response.headers.get('X-Size'));
    const buffer = await response.arrayBuffer();
    if (buffer.byteLength !== n_layers * n_heads * size * size) {
      throw new Error(`invalid grid response: ${buffer.byteLength} bytes for ${n_layers}×${n_heads}×${size}²: ${url}`);
    }
    return { value: { n_layers, n_heads, size, data: new Uint8Array(buffer) }, bytes: buffer.byteLength };
  }

  const source = {
    kind: 'http',

    async listRuns() {
      const body = await getJson(`${base}/api/runs`);
      return Array.isArray(body.runs) ? body.runs : [];
    },

    manifest(runId) {
      if (manifests.has(runId)) return manifests.get(runId);
      const p = getJson(`${runUrl(runId)}/manifest`).then((m) => {
        checkManifest(m, runId);
        if (!m.complete) manifests.delete(runId); // still growing: ask again next time
        return m;
      });
      manifests.set(runId, p);
      p.catch(() => manifests.delete(runId));
      return p;
    },

    async matrix(runId, req) {
      const m = await source.manifest(runId);
      const r = checkMatrixRequest(req, m);
      const head = r.agg === 'none' ? r.head : 0;
      const layer = r.agg === 'layer-mean' ? 0 : r.layer;
      const q = `layer=${layer}&head=${head}&agg=${r.agg}&q0=${r.q0}&q1=${r.q1}&k0=${r.k0}&k1=${r.k1}&stride=${r.stride}`;
      return getCached(`${runUrl(runId)}/matrix?${q}`, parseMatrix, req.signal);
    },

    grid(runId, size) {
      if (!(Number.isInteger(size) && size >= 1)) return Promise.reject(new Error(`invalid size: ${size}`));
      return getCached(`${runUrl(runId)}/grid?size=${size}`, parseGrid);
    },

    // Capture (only when the server has --model; ATTNSCOPE_CONFIG.captureEnabled).
    async startCapture(prompt, maxNewTokens) {
      const body = await getJson(`${base}/api/capture`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ prompt, max_new_tokens: maxNewTokens }),
      });
      if (!body || typeof body.job !== 'string') throw new Error('invalid capture response: no job id');
      return body.job;
    },

    job(jobId) {
      return getJson(`${base}/api/jobs/${encodeURIComponent(jobId)}`);
    },

    get cacheInfo() {
      return { entries: cache.size, bytes: cache.bytes, inflight: inflight.size };
    },
  };
  return source;
}
