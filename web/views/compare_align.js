// Alignment of two runs' token sequences for the compare view. Pure: no DOM.

/** Whether two manifest tokens are the same token (same id and the same text bytes). */
export function sameToken(a, b) {
  if (!a || !b) return false;
  if (a.id !== b.id) return false;
  const ta = a.text_hex ?? a.text, tb = b.text_hex ?? b.text;
  return ta === tb;
}

/** Length of the longest common prefix of two token arrays. */
export function commonPrefix(a, b, eq = sameToken) {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && eq(a[i], b[i])) i++;
  return i;
}

/**
 * Row alignment for display: the shared prefix pairs position i with position i; after
 * it the two tails are listed side by side (row r pairs a's r and b's r, or null where
 * one tail is shorter). Returns {prefix, rows: [{a, b, shared}]}.
 */
export function alignRuns(a, b, eq = sameToken) {
  const prefix = commonPrefix(a, b, eq);
  const rows = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    rows.push({ a: i < a.length ? i : null, b: i < b.length ? i : null, shared: i < prefix });
  }
  return { prefix, rows };
}

/**
 * The position on the other side that corresponds to `index` on this side: the same
 * position inside the shared prefix, null after it (there is no counterpart).
 */
export function counterpart(index, prefix) {
  return Number.isInteger(index) && index >= 0 && index < prefix ? index : null;
}

/**
 * A cell size shared by the two small heatmaps so that the shared prefix occupies the
 * same pixels on both sides: the larger run fills `size` pixels.
 */
export function sharedCellSize(nA, nB, size) {
  const n = Math.max(1, nA, nB);
  return size / n;
}

/** The larger of two maxima (a shared colour scale); 0 stays 0. */
export function sharedMax(...maxima) {
  let m = 0;
  for (const v of maxima) if (v > m) m = v;
  return m;
}
