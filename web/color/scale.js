// Colour scales: a 256-entry lookup table per palette (built once, simpleheat's way),
// a linear or log mapping of a value domain onto it, and the legend's ticks. Pure
// functions, no DOM: views write LUT entries into ImageData or CSS colours.

// Colour-blind-friendly sequential palettes (low -> high), as evenly spaced stops.
export const PALETTES = {
  // ColorBrewer "Blues": near white at 0, so a weight of 0 leaves text unshaded.
  blues: ['#f7fbff', '#deebf7', '#c6dbef', '#9ecae1', '#6baed6', '#4292c6', '#2171b5', '#08519c', '#08306b'],
  // matplotlib "viridis" (perceptually uniform; dark at 0): for heatmaps.
  viridis: ['#440154', '#482878', '#3e4989', '#31688e', '#26828e', '#1f9e89', '#35b779', '#6ece58', '#b5de2b', '#fde725'],
};

export const LUT_SIZE = 256;
const luts = new Map();

function parseHex(hex) {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

// Uint8ClampedArray(256 × 4) of RGBA, interpolated linearly between the stops.
export function buildLut(palette = 'blues') {
  if (luts.has(palette)) return luts.get(palette);
  const stops = PALETTES[palette];
  if (!stops) throw new Error(`invalid palette: ${palette}`);
  const rgb = stops.map(parseHex);
  const lut = new Uint8ClampedArray(LUT_SIZE * 4);
  for (let i = 0; i < LUT_SIZE; i++) {
    const x = (i / (LUT_SIZE - 1)) * (rgb.length - 1);
    const j = Math.min(Math.floor(x), rgb.length - 2);
    const f = x - j;
    for (let c = 0; c < 3; c++) lut[4 * i + c] = Math.round(rgb[j][c] + (rgb[j + 1][c] - rgb[j][c]) * f);
    lut[4 * i + 3] = 255;
  }
  luts.set(palette, lut);
  return lut;
}

// The lower end of a log domain when the data give none: 1/1000 of the maximum.
export const LOG_RANGE = 1e-3;

// A domain for `values` (any iterable of numbers): linear [0, max], log
// [max·LOG_RANGE, max]. An all-zero or empty input gives [0, 1] / [LOG_RANGE, 1].
export function autoDomain(values, type = 'linear') {
  let max = 0;
  for (const v of values) if (v > max) max = v;
  if (!(max > 0) || !Number.isFinite(max)) max = 1;
  return { min: type === 'log' ? max * LOG_RANGE : 0, max };
}

// Position of v in [0, 1] on a linear or log scale over [min, max] (clamped; values
// at or below min, and non-positive values on a log scale, give 0).
export function scalePosition(v, { type = 'linear', min, max }) {
  if (!(v > min)) return 0; // also NaN
  if (v >= max) return 1;
  if (type === 'log') {
    if (!(min > 0)) throw new Error(`invalid log domain: min ${min}`);
    return Math.log(v / min) / Math.log(max / min);
  }
  return (v - min) / (max - min);
}

// A scale: {type, min, max, palette, lut, position(v), index(v), rgb(v), css(v), ink(v), ticks(n)}.
export function createScale({ type = 'linear', min = 0, max = 1, palette = 'blues' } = {}) {
  if (type !== 'linear' && type !== 'log') throw new Error(`invalid scale: ${type}`);
  if (!(max > min)) throw new Error(`invalid domain: ${min}..${max}`);
  if (type === 'log' && !(min > 0)) throw new Error(`invalid log domain: min ${min}`);
  const lut = buildLut(palette);
  const domain = { type, min, max };
  const index = (v) => Math.round(scalePosition(v, domain) * (LUT_SIZE - 1));
  const rgb = (v) => {
    const i = 4 * index(v);
    return [lut[i], lut[i + 1], lut[i + 2]];
  };
  return {
    type,
    min,
    max,
    palette,
    lut,
    position: (v) => scalePosition(v, domain),
    index,
    rgb,
    css: (v) => `rgb(${rgb(v).join(', ')})`,
    ink: (v) => inkFor(rgb(v)),
    ticks: (count = 5) => (type === 'log' ? logTicks(min, max) : linearTicks(min, max, count)),
  };
}

// Relative luminance (WCAG) of an sRGB colour [r, g, b] in 0..255.
export function luminance([r, g, b]) {
  const lin = (c) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

// Text colour readable on a background: near-black or white, whichever contrasts more.
export function inkFor(rgbBackground) {
  const L = luminance(rgbBackground);
  const contrastDark = (L + 0.05) / (0.012 + 0.05); // #1b1f24-ish
  const contrastLight = 1.05 / (L + 0.05);
  return contrastDark >= contrastLight ? '#1b1f24' : '#ffffff';
}

// "Nice" linear ticks (1, 2, 5 × 10^k) inside [min, max], at most about `count`.
export function linearTicks(min, max, count = 5) {
  if (!(max > min) || count < 1) return [];
  const raw = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let i = Math.ceil(min / step - 1e-9); i * step <= max + step * 1e-9; i++) {
    out.push(Number((i * step).toPrecision(12)));
  }
  return out;
}

// Log ticks: the powers of ten inside [min, max]; with fewer than two, also 2× and 5×.
export function logTicks(min, max) {
  if (!(max > min && min > 0)) return [];
  const lo = Math.ceil(Math.log10(min) - 1e-9);
  const hi = Math.floor(Math.log10(max) + 1e-9);
  const decades = [];
  for (let e = lo; e <= hi; e++) decades.push(Number((10 ** e).toPrecision(12)));
  if (decades.length >= 2) return decades;
  const out = [];
  for (let e = lo - 1; e <= hi; e++) {
    for (const m of [1, 2, 5]) {
      const v = Number((m * 10 ** e).toPrecision(12));
      if (v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9)) out.push(v);
    }
  }
  return out;
}

// A weight for people: 3 significant digits, exponent form below 0.001.
export function formatValue(v) {
  if (v === 0) return '0';
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1e-3) return String(Number(v.toPrecision(3)));
  return v.toExponential(1).replace('e-', 'e−');
}
