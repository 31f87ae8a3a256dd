// Layout of the layers × heads thumbnail grid. Pure: no DOM.

/**
 * Thumbnail size (CSS px) so that `n_heads` thumbnails and their gaps fit `width`
 * after the row label, kept within [minSize, maxSize].
 */
export function thumbSize(n_heads, width, { labelWidth = 40, gap = 4, minSize = 24, maxSize = 96 } = {}) {
  if (!(Number.isInteger(n_heads) && n_heads > 0)) throw new Error(`invalid n_heads: ${n_heads}`);
  const avail = width - labelWidth - gap * n_heads;
  const s = Math.floor(avail / n_heads);
  return Math.min(maxSize, Math.max(minSize, Number.isFinite(s) ? s : minSize));
}

/**
 * Byte offset of thumbnail (layer, head) in the grid data, layout
 * (n_layers, n_heads, size, size).
 */
export function thumbOffset(grid, layer, head) {
  const { n_layers, n_heads, size } = grid;
  if (!(layer >= 0 && layer < n_layers)) throw new Error(`invalid layer: ${layer}`);
  if (!(head >= 0 && head < n_heads)) throw new Error(`invalid head: ${head}`);
  return (layer * n_heads + head) * size * size;
}

/** One thumbnail's bytes (a view, no copy): (size, size) row-major, 0..255. */
export function thumbBytes(grid, layer, head) {
  const off = thumbOffset(grid, layer, head);
  return grid.data.subarray(off, off + grid.size * grid.size);
}

/**
 * The colour of each thumbnail byte b (= value / thumbnail max · 255) under a colour
 * scale over [0, 1] (color/scale.js createScale): Uint8ClampedArray(256 × 4) RGBA.
 */
export function byteColors(scale) {
  const out = new Uint8ClampedArray(256 * 4);
  for (let b = 0; b < 256; b++) {
    const [r, g, bl] = scale.rgb(b / 255);
    out[4 * b] = r; out[4 * b + 1] = g; out[4 * b + 2] = bl; out[4 * b + 3] = 255;
  }
  return out;
}

/** Fill RGBA pixels (ImageData.data, size*size*4) from thumbnail bytes through byteColors. */
export function paintThumb(bytes, colors, rgba) {
  for (let i = 0; i < bytes.length; i++) {
    const c = 4 * bytes[i], o = 4 * i;
    rgba[o] = colors[c]; rgba[o + 1] = colors[c + 1]; rgba[o + 2] = colors[c + 2]; rgba[o + 3] = 255;
  }
  return rgba;
}
