// Zoom / pan / visible-window / stride arithmetic of the matrix heatmap. Pure: no DOM.
//
// A view is {scale, x0, y0}:
//   scale  CSS pixels per matrix cell (one position),
//   x0     key position (column, float) at the left edge of the plot area,
//   y0     query position (row, float) at the top edge of the plot area.
// A plot area is {n, width, height} (n = positions on each axis, the matrix is n × n;
// width/height in CSS pixels). Screen point (px, py) ↔ matrix point (x0 + px/scale,
// y0 + py/scale); x is the key, y the query.

/** Largest zoom: CSS pixels per cell. Enough to read a token label in its cell. */
export const MAX_SCALE = 96;

/** The server refuses a matrix request above 4M cells (docs/viewer-api.md). */
export const MAX_REQUEST_CELLS = 4 * 1024 * 1024;

function checkArea({ n, width, height }) {
  if (!(Number.isInteger(n) && n >= 0)) throw new Error(`invalid n: ${n}`);
  if (!(width > 0)) throw new Error(`invalid width: ${width}`);
  if (!(height > 0)) throw new Error(`invalid height: ${height}`);
}

/** The scale at which the whole matrix fits the area (the least zoom). */
export function fitScale(area) {
  checkArea(area);
  return Math.min(area.width, area.height) / Math.max(1, area.n);
}

/** The whole matrix, top-left aligned. */
export function fitView(area) {
  return { scale: fitScale(area), x0: 0, y0: 0 };
}

function clampAxis(origin, extentCells, n) {
  // extentCells: how many cells the area shows on this axis at the current scale.
  if (extentCells >= n) return 0;                     // everything visible: no pan
  return Math.min(Math.max(origin, 0), n - extentCells);
}

/** Scale into [fitScale, max(fitScale, MAX_SCALE)], origin so that no empty margin shows. */
export function clampView(view, area) {
  const lo = fitScale(area);
  const hi = Math.max(lo, MAX_SCALE);
  const scale = Math.min(Math.max(view.scale, lo), hi);
  return {
    scale,
    x0: clampAxis(view.x0, area.width / scale, area.n),
    y0: clampAxis(view.y0, area.height / scale, area.n),
  };
}

/** Screen (CSS px, relative to the plot area) → matrix point (float positions). */
export function screenToMatrix(view, px, py) {
  return { x: view.x0 + px / view.scale, y: view.y0 + py / view.scale };
}

/** Matrix point → screen (CSS px). */
export function matrixToScreen(view, x, y) {
  return { px: (x - view.x0) * view.scale, py: (y - view.y0) * view.scale };
}

/** The cell under a screen point, or null outside the matrix. q = query (row), k = key (column). */
export function cellAt(view, area, px, py) {
  const { x, y } = screenToMatrix(view, px, py);
  const q = Math.floor(y), k = Math.floor(x);
  if (q < 0 || k < 0 || q >= area.n || k >= area.n) return null;
  return { q, k };
}

/**
 * Zoom by `factor` around the screen point (px, py): the matrix point under it stays
 * under it (unless clamping to the matrix edges has to move it).
 */
export function zoomAt(view, area, factor, px, py) {
  if (!(factor > 0)) throw new Error(`invalid zoom factor: ${factor}`);
  const lo = fitScale(area);
  const scale = Math.min(Math.max(view.scale * factor, lo), Math.max(lo, MAX_SCALE));
  const { x, y } = screenToMatrix(view, px, py);
  return clampView({ scale, x0: x - px / scale, y0: y - py / scale }, area);
}

/** Drag by (dx, dy) CSS pixels: the content follows the pointer. */
export function panBy(view, area, dx, dy) {
  return clampView({ scale: view.scale, x0: view.x0 - dx / view.scale, y0: view.y0 - dy / view.scale }, area);
}

/** Integer half-open ranges of the positions at least partly on screen. */
export function visibleWindow(view, area) {
  const n = area.n;
  const clamp = (v) => Math.min(Math.max(v, 0), n);
  return {
    q0: clamp(Math.floor(view.y0)),
    q1: clamp(Math.ceil(view.y0 + area.height / view.scale)),
    k0: clamp(Math.floor(view.x0)),
    k1: clamp(Math.ceil(view.x0 + area.width / view.scale)),
  };
}

/**
 * Downsampling stride for a view: the smallest integer with at most one cell per
 * device pixel (stride 1 once a cell is at least one device pixel).
 */
export function strideFor(scale, dpr = 1) {
  const devicePx = scale * dpr;                  // device pixels per position
  if (!(devicePx > 0)) throw new Error(`invalid scale: ${scale}`);
  // The epsilon keeps 1/(1/3) from rounding up to 4.
  return Math.max(1, Math.ceil(1 / devicePx - 1e-9));
}

function cells(w, stride) {
  return Math.ceil((w.q1 - w.q0) / stride) * Math.ceil((w.k1 - w.k0) / stride);
}

/**
 * The matrix request for a view: the visible window widened by `margin` (a fraction of
 * its size on each side, so that small pans need no new request), snapped outwards to
 * multiples of the stride (so that a block always covers the same positions), and the
 * stride raised until the request has at most `maxCells` cells.
 * Returns {q0, q1, k0, k1, stride}; empty ranges when n = 0.
 */
export function requestFor(view, area, { dpr = 1, margin = 0.25, maxCells = MAX_REQUEST_CELLS } = {}) {
  const n = area.n;
  const win = visibleWindow(view, area);
  const mq = Math.ceil((win.q1 - win.q0) * margin), mk = Math.ceil((win.k1 - win.k0) * margin);
  let stride = strideFor(view.scale, dpr);
  for (;;) {
    const snapLo = (v) => Math.max(0, Math.floor(v / stride) * stride);
    const snapHi = (v) => Math.min(n, Math.ceil(v / stride) * stride);
    const req = {
      q0: snapLo(win.q0 - mq), q1: snapHi(win.q1 + mq),
      k0: snapLo(win.k0 - mk), k1: snapHi(win.k1 + mk),
      stride,
    };
    if (cells(req, stride) <= maxCells || stride >= Math.max(1, n)) return req;
    stride++;
  }
}

/** Whether a loaded request can serve a wanted one: same stride, loaded covers the visible window. */
export function covers(loaded, wanted, win) {
  return !!loaded && loaded.stride === wanted.stride &&
    loaded.q0 <= win.q0 && loaded.q1 >= win.q1 && loaded.k0 <= win.k0 && loaded.k1 >= win.k1;
}

/** Font size (CSS px) for token labels at a scale, or 0 when cells are too small to read. */
export function labelFontSize(scale) {
  if (scale < 9) return 0;
  return Math.min(13, Math.floor(scale * 0.8));
}

/** A round step for position ticks so that ticks are at least `minGapPx` apart. */
export function tickStep(scale, minGapPx = 40) {
  const raw = minGapPx / scale;
  const pow = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1e-9))));
  for (const m of [1, 2, 5, 10]) if (m * pow >= raw) return Math.max(1, m * pow);
  return Math.max(1, 10 * pow);
}
