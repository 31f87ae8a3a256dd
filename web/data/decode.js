// Decoding of the embedded run data: base64, u8 / f16 / f32 values, lower triangles
// (row q holds keys 0..q) and max-pool downsampling. Pure functions, no DOM.

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = (() => {
  const t = new Int16Array(128).fill(-1);
  for (let i = 0; i < B64.length; i++) t[B64.charCodeAt(i)] = i;
  t['-'.charCodeAt(0)] = 62; // base64url, harmless to accept
  t['_'.charCodeAt(0)] = 63;
  return t;
})();

// base64 (padding optional, whitespace ignored) -> Uint8Array. Throws on a bad character.
export function base64ToBytes(text) {
  if (typeof text !== 'string') throw new TypeError(`invalid base64: ${typeof text}`);
  const out = new Uint8Array(Math.floor((text.length * 3) / 4) + 3);
  let n = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 61) break; // '=' padding: the end
    if (c === 32 || c === 10 || c === 13 || c === 9) continue;
    const v = c < 128 ? B64_INDEX[c] : -1;
    if (v < 0) throw new Error(`invalid base64: character ${JSON.stringify(text[i])} at ${i}`);
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >> bits) & 0xff;
    }
  }
  return out.slice(0, n);
}

// Number of values in the lower triangle of an n × n matrix (row q has q+1 values).
export function triangleSize(n) {
  return (n * (n + 1)) / 2;
}

// Offset of row q in a lower triangle.
export function rowOffset(q) {
  return (q * (q + 1)) / 2;
}

// u8 values (round(p·255)) -> Float32Array of p.
export function decodeU8(bytes) {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i] / 255;
  return out;
}

// One IEEE half (as a 16-bit integer) -> number.
export function halfToFloat(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

// Little-endian f16 bytes -> Float32Array.
export function decodeF16(bytes) {
  if (bytes.length % 2) throw new Error(`invalid f16 data: ${bytes.length} bytes is odd`);
  const out = new Float32Array(bytes.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = halfToFloat(bytes[2 * i] | (bytes[2 * i + 1] << 8));
  return out;
}

// Little-endian f32 bytes -> Float32Array (copied, so alignment does not matter).
export function decodeF32(bytes) {
  if (bytes.length % 4) throw new Error(`invalid f32 data: ${bytes.length} bytes is not a multiple of 4`);
  const out = new Float32Array(bytes.length / 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
  return out;
}

// Decoded values of an `encoding` ("u8" | "f16" | "f32") chunk, as {values, factor}:
// the probability of value i is values[i] * factor. u8 stays a Uint8Array (4× smaller).
export function decodeValues(bytes, encoding) {
  switch (encoding) {
    case 'u8':
      return { values: bytes, factor: 1 / 255 };
    case 'f16':
      return { values: decodeF16(bytes), factor: 1 };
    case 'f32':
      return { values: decodeF32(bytes), factor: 1 };
    default:
      throw new Error(`invalid encoding: ${encoding}`);
  }
}

// Output size of a stride-`stride` max-pool over `extent` positions.
export function pooledSize(extent, stride) {
  return Math.ceil(extent / stride);
}

// Slice of a lower triangle of side n (any typed array; value × factor), rows
// [q0, q1) and keys [k0, k1), max-pooled by stride: cell (r, c) is the maximum of
// the rows q0 + r·stride .. and keys k0 + c·stride .. (clipped to q1, k1). Entries
// above the diagonal are 0. Returns {rows, cols, data: Float32Array} row-major.
export function sliceTriangle(tri, n, { q0, q1, k0, k1, stride = 1 }, factor = 1) {
  if (tri.length < triangleSize(n)) {
    throw new Error(`invalid triangle: ${tri.length} values for ${n} rows (expected ${triangleSize(n)})`);
  }
  if (!(q0 >= 0 && q0 <= q1 && q1 <= n)) throw new Error(`invalid query range: ${q0}..${q1} of ${n}`);
  if (!(k0 >= 0 && k0 <= k1 && k1 <= n)) throw new Error(`invalid key range: ${k0}..${k1} of ${n}`);
  const rows = pooledSize(q1 - q0, stride);
  const cols = pooledSize(k1 - k0, stride);
  const data = new Float32Array(rows * cols); // (rows, cols)
  for (let q = q0; q < q1; q++) {
    const out = ((q - q0) / stride | 0) * cols;
    const base = rowOffset(q);
    const kEnd = Math.min(k1, q + 1); // keys after q are 0
    for (let k = k0; k < kEnd; k++) {
      const v = tri[base + k] * factor;
      const o = out + ((k - k0) / stride | 0);
      if (v > data[o]) data[o] = v;
    }
  }
  return { rows, cols, data };
}

// Dense max-pool of a row-major (rows, cols) matrix. Same block rule as sliceTriangle.
export function maxPool(data, rows, cols, stride) {
  if (!(stride >= 1 && Number.isInteger(stride))) throw new Error(`invalid stride: ${stride}`);
  const outRows = pooledSize(rows, stride);
  const outCols = pooledSize(cols, stride);
  const out = new Float32Array(outRows * outCols).fill(-Infinity);
  for (let r = 0; r < rows; r++) {
    const o = ((r / stride) | 0) * outCols;
    for (let c = 0; c < cols; c++) {
      const v = data[r * cols + c];
      const i = o + ((c / stride) | 0);
      if (v > out[i]) out[i] = v;
    }
  }
  return { rows: outRows, cols: outCols, data: out };
}

// A whole lower triangle as a dense (n, n) Float32Array (zeros above the diagonal).
export function unpackTriangle(tri, n, factor = 1) {
  return sliceTriangle(tri, n, { q0: 0, q1: n, k0: 0, k1: n, stride: 1 }, factor).data;
}
