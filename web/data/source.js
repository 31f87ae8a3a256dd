// The data-source interface (docs/viewer-api.md). Two implementations: HttpSource
// (attnscope serve) and EmbeddedSource (attnscope render). Views never know which.
//
// /**
//  * @typedef {Object} RunSummary
//  * @property {string} id         URL-safe run id
//  * @property {string} name
//  * @property {string} model      the model's name
//  * @property {string} prompt
//  * @property {number} n_tokens
//  * @property {boolean} complete
//  *
//  * @typedef {Object} Manifest    the run's manifest.json (docs/store-format.md) plus
//  * @property {number} n_rows     positions with stored attention (rows 0..n_rows-1)
//  *
//  * @typedef {Object} MatrixRequest
//  * @property {number} layer
//  * @property {number} head       used only when agg is "none"
//  * @property {"none"|"head-mean"|"head-max"|"layer-mean"|"rollout"} agg
//  * @property {number} q0  @property {number} q1   query rows [q0, q1), q1 <= n_rows
//  * @property {number} k0  @property {number} k1   keys [k0, k1), k1 <= n_rows
//  * @property {number} [stride=1]  max-pool: each cell is the max of a stride×stride block
//  * @property {AbortSignal} [signal] optional: abandon the request (HttpSource aborts
//  *                                   the fetch when no other caller waits for it)
//  *
//  * @typedef {Object} Source
//  * @property {() => Promise<RunSummary[]>} listRuns
//  * @property {(runId: string) => Promise<Manifest>} manifest
//  * @property {(runId: string, req: MatrixRequest) =>
//  *            Promise<{rows: number, cols: number, data: Float32Array}>} matrix
//  *            row-major, rows = ceil((q1-q0)/stride), cols = ceil((k1-k0)/stride),
//  *            entries above the diagonal 0
//  * @property {(runId: string, size: number) =>
//  *            Promise<{n_layers, n_heads, size, data: Uint8Array}>} grid
//  *            (n_layers, n_heads, size, size), each thumbnail scaled to max 255;
//  *            EmbeddedSource returns the size the page holds (check `size`)
//  */
//
// Errors are thrown as Error with a message meant for the user.

import { createHttpSource } from 'attnscope/data/http_source.js';
import { createEmbeddedSource } from 'attnscope/data/embedded_source.js';

export function createSource(config) {
  const mode = config && config.mode;
  if (mode === 'http') return createHttpSource({ base: config.base || '' });
  if (mode === 'embedded') return createEmbeddedSource({ runs: config.runs || [] });
  throw new Error(`invalid mode: ${mode}`);
}

// Checks a MatrixRequest against a run's shape; returns it normalised (stride 1 default).
export function checkMatrixRequest(req, manifest) {
  const n = manifest.n_rows;
  const shape = manifest.attention || manifest.model || {};
  const { layer, head, agg } = req;
  const stride = req.stride === undefined ? 1 : req.stride;
  const isInt = (v) => Number.isInteger(v);
  if (!['none', 'head-mean', 'head-max', 'layer-mean', 'rollout'].includes(agg)) throw new Error(`invalid agg: ${agg}`);
  if (agg !== 'layer-mean' && !(isInt(layer) && layer >= 0 && layer < shape.n_layers)) throw new Error(`invalid layer: ${layer}`);
  if (agg === 'none' && !(isInt(head) && head >= 0 && head < shape.n_heads)) throw new Error(`invalid head: ${head}`);
  for (const [name, v] of [['q0', req.q0], ['q1', req.q1], ['k0', req.k0], ['k1', req.k1]]) {
    if (!isInt(v) || v < 0 || v > n) throw new Error(`invalid ${name}: ${v}`);
  }
  if (req.q0 > req.q1) throw new Error(`invalid q0: ${req.q0} > q1 ${req.q1}`);
  if (req.k0 > req.k1) throw new Error(`invalid k0: ${req.k0} > k1 ${req.k1}`);
  if (!isInt(stride) || stride < 1) throw new Error(`invalid stride: ${stride}`);
  return { layer, head, agg, q0: req.q0, q1: req.q1, k0: req.k0, k1: req.k1, stride };
}

// n_rows of a manifest: the server's field, else the store's attention.n_rows.
// Checks a manifest before any view sizes itself from it (a hostile or damaged one could
// ask for a billion layers); returns it with n_rows filled in. Throws naming the field.
export function checkManifest(m, runId) {
  const bad = (what) => new Error(`invalid manifest for run ${runId}: ${what}`);
  if (!m || typeof m !== 'object' || !Array.isArray(m.tokens)) throw bad('no token list');
  const shape = m.attention || m.model || {};
  for (const key of ['n_layers', 'n_heads']) {
    const v = shape[key];
    if (!(Number.isInteger(v) && v >= 1 && v <= 4096)) throw bad(`${key} = ${v}, expected 1..4096`);
  }
  const rows = manifestRows(m);
  if (!(Number.isInteger(rows) && rows >= 0 && rows <= m.tokens.length)) {
    throw bad(`n_rows = ${rows}, expected 0..${m.tokens.length}`);
  }
  m.n_rows = rows;
  return m;
}

export function manifestRows(m) {
  if (Number.isInteger(m.n_rows)) return m.n_rows;
  if (m.attention && Number.isInteger(m.attention.n_rows)) return m.attention.n_rows;
  return Array.isArray(m.tokens) ? m.tokens.length : 0;
}
