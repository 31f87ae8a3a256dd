// Layout and summaries of the flow view (attention of one query across layers). Pure: no DOM.

/**
 * The k largest weights of a row, largest first; ties go to the earlier position.
 * `offset` is the position of weights[0]. Returns [{index, weight}].
 */
export function topK(weights, k, offset = 0) {
  if (!(Number.isInteger(k) && k >= 0)) throw new Error(`invalid k: ${k}`);
  if (k === 0) return [];
  const out = [];                                   // kept sorted: weight desc, index asc
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i];
    if (!(w > -Infinity)) continue;                 // skip NaN
    if (out.length === k && !(w > out[k - 1].weight)) continue;
    let j = out.length < k ? out.length : k - 1;
    while (j > 0 && out[j - 1].weight < w) j--;
    out.splice(j, 0, { index: i + offset, weight: w });
    if (out.length > k) out.pop();
  }
  return out;
}

/**
 * Shannon entropy of a row of weights, normalised by its sum first (a stored f16/u8 row
 * sums to 1 only approximately). `base` 2 gives bits. 0 for an all-zero row.
 */
export function entropy(weights, base = 2) {
  let sum = 0;
  for (const w of weights) if (w > 0) sum += w;
  if (!(sum > 0)) return 0;
  let h = 0;
  for (const w of weights) {
    if (w > 0) { const p = w / sum; h -= p * Math.log(p); }
  }
  return Math.max(0, h / Math.log(base));
}

/** Entropy divided by its maximum log(count): 0 = all on one key, 1 = uniform. */
export function normalizedEntropy(weights) {
  const n = weights.length;
  if (n <= 1) return 0;
  return entropy(weights, Math.E) / Math.log(n);
}

/** Summary of one row: top-k, entropy (bits), and its maximum. */
export function summarize(weights, { k = 3, offset = 0 } = {}) {
  let max = 0;
  for (const w of weights) if (w > max) max = w;
  return { top: topK(weights, k, offset), entropyBits: entropy(weights, 2), max };
}

/**
 * Columns for `n` tokens in `width` CSS pixels: when a column would be narrower than
 * `minWidth`, neighbouring tokens share a column (a bin) and the bin shows their maximum.
 * Returns {bins, binSize, colWidth}: bins[c] = [first, last+1) positions of column c.
 */
export function columnLayout(n, width, minWidth = 3) {
  if (!(Number.isInteger(n) && n >= 0)) throw new Error(`invalid n: ${n}`);
  if (!(width > 0)) throw new Error(`invalid width: ${width}`);
  if (n === 0) return { bins: [], binSize: 1, colWidth: width };
  const binSize = Math.max(1, Math.ceil(n * minWidth / width));
  const count = Math.ceil(n / binSize);
  const bins = [];
  for (let c = 0; c < count; c++) bins.push([c * binSize, Math.min(n, (c + 1) * binSize)]);
  return { bins, binSize, colWidth: width / count };
}

/** The maximum of each bin of a row (see columnLayout). */
export function binRow(weights, bins) {
  return bins.map(([a, b]) => {
    let m = 0;
    for (let i = a; i < b; i++) if (weights[i] > m) m = weights[i];
    return m;
  });
}

/** Positions with stored attention: the manifest's n_rows, else attention.n_rows, else the tokens. */
export function rowsOf(manifest) {
  if (Number.isInteger(manifest.n_rows)) return manifest.n_rows;
  if (manifest.attention && Number.isInteger(manifest.attention.n_rows)) return manifest.attention.n_rows;
  return Array.isArray(manifest.tokens) ? manifest.tokens.length : 0;
}
