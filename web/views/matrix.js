// The matrix view: a canvas heatmap of the (query × key) attention matrix of the selected
// head or aggregate, with wheel zoom around the cursor, drag to pan, a reset button, token
// labels on the axes once they are readable and a hover readout.
// Only what is on screen is requested: downsampled (max-pooled) when zoomed out, the
// visible window at stride 1 when zoomed in (matrix_viewport.js has the arithmetic).
//
// Test hooks: the canvas carries data-rows / data-cols (the full matrix); the readout
// carries data-query / data-key / data-value while the pointer is over a cell.

import {
  fitView, clampView, zoomAt, panBy, cellAt, visibleWindow, requestFor, covers,
  labelFontSize, tickStep, MAX_SCALE,
} from 'attnscope/views/matrix_viewport.js';
import { createScale, autoDomain, formatValue } from 'attnscope/color/scale.js';
import { createLegend } from 'attnscope/ui/legend.js';
import { shortLabel, tokenReadout } from 'attnscope/views/token_label.js';
import { rowsOf } from 'attnscope/views/flow_layout.js';

const LEFT = 92;          // CSS px: query labels
const TOP = 76;           // CSS px: key labels
const OVERVIEW = 256;     // the colour domain comes from a ≤ OVERVIEW² max-pooled full matrix

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v; else if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

/** What a selection reads: equal keys ⇒ the same matrix. */
export function selectionKey({ layer, head, agg }) {
  if (agg === 'layer-mean') return 'layer-mean';
  if (agg === 'none') return `none/${layer}/${head}`;
  return `${agg}/${layer}`;
}

function selectionTitle({ layer, head, agg }) {
  if (agg === 'none') return `layer ${layer}, head ${head}`;
  if (agg === 'layer-mean') return 'mean over all layers';
  if (agg === 'rollout') return `rollout through layer ${layer}`;
  return `${agg === 'head-mean' ? 'mean' : 'max'} over the heads of layer ${layer}`;
}

export function mountMatrix(container, ctx) {
  const { source, state, runId, manifest } = ctx;
  const tokens = manifest.tokens || [];
  const n = rowsOf(manifest);

  const resetBtn = el('button', { type: 'button', class: 'matrix-reset', title: 'Show the whole matrix (0)', text: 'Reset zoom' });
  const title = el('span', { class: 'matrix-title' });
  const status = el('span', { class: 'matrix-status', 'aria-live': 'polite' });
  const canvas = el('canvas', {
    class: 'matrix-canvas', tabindex: '0', 'data-rows': String(n), 'data-cols': String(n),
    'aria-label': 'Attention matrix: rows are query positions, columns key positions. Wheel or +/- to zoom, drag or arrow keys to pan.',
  });
  canvas.style.imageRendering = 'pixelated';
  canvas.style.display = 'block';
  canvas.style.touchAction = 'none';
  canvas.style.cursor = 'crosshair';
  const readout = el('div', { class: 'matrix-readout', 'aria-live': 'off' });
  const toolbar = el('div', { class: 'matrix-toolbar' }, title, resetBtn, status);
  toolbar.style.cssText = 'display:flex;gap:12px;align-items:center;flex-wrap:wrap;margin:4px 0';
  status.style.cssText = 'color:#666;font-size:12px';
  readout.style.cssText = 'min-height:1.5em;font-size:13px;margin-top:4px;font-variant-numeric:tabular-nums';
  const legendBox = el('div', { class: 'matrix-legend' });
  const root = el('section', { class: 'attnscope-matrix' }, toolbar, legendBox, canvas, readout);
  container.append(root);
  const legend = createLegend(legendBox);

  let area = { n, width: 1, height: 1 };
  let view = fitView(area);
  let atFit = true;                  // keep fitting while the user has not zoomed
  let dpr = window.devicePixelRatio || 1;
  let hover = null;                  // {q, k, px, py}
  let loaded = null;                 // {key, req, rows, cols, data}
  let image = null;                  // offscreen canvas: one pixel per loaded cell
  let domain = null;                 // {key, values}: the max-pooled full matrix
  let color = createScale({ type: state.get().scale, ...autoDomain([], state.get().scale) });
  let fetchSeq = 0, fetchTimer = 0, frame = 0, exactSeq = 0, exactTimer = 0;
  let controller = null;
  let destroyed = false;

  function setStatus(text) { status.textContent = text; }

  // ---- size -----------------------------------------------------------------------------
  let lastWidth = -1;
  function resize() {
    // The plot area is square (the matrix is): zooming from the fit never has to clamp.
    const avail = Math.max(160, root.clientWidth || container.clientWidth || 600);
    const maxH = Math.round((window.innerHeight || 800) * 0.8) - TOP;
    const size = Math.max(120, Math.min(avail - LEFT, maxH));
    const newDpr = window.devicePixelRatio || 1;
    if (avail === lastWidth && newDpr === dpr && size === area.width) return;
    lastWidth = avail;
    dpr = newDpr;
    canvas.style.width = `${LEFT + size}px`;
    canvas.style.height = `${TOP + size}px`;
    canvas.width = Math.round((LEFT + size) * dpr);
    canvas.height = Math.round((TOP + size) * dpr);
    area = { n, width: size, height: size };
    view = atFit ? fitView(area) : clampView(view, area);
    schedule();
  }

  // ---- data -----------------------------------------------------------------------------
  function wantedRequest() {
    return requestFor(view, area, { dpr });
  }

  function schedule() {
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; draw(); });
    clearTimeout(fetchTimer);
    fetchTimer = setTimeout(maybeFetch, 40);
  }

  async function ensureDomain(key, sel) {
    if (domain && domain.key === key) return;
    const stride = Math.max(1, Math.ceil(n / OVERVIEW));
    const m = await source.matrix(runId, { ...sel, q0: 0, q1: n, k0: 0, k1: n, stride });
    if (selectionKey(state.get()) !== key) return;
    domain = { key, values: m.data };
    rebuildColor();
  }

  async function maybeFetch() {
    if (destroyed || n === 0) return;
    const s = state.get();
    const sel = { layer: s.layer, head: s.head, agg: s.agg };
    const key = selectionKey(sel);
    const want = wantedRequest();
    if (loaded && loaded.key === key && covers(loaded.req, want, visibleWindow(view, area))) return;
    if (loaded && loaded.key !== key) { loaded = null; image = null; }
    const seq = ++fetchSeq;
    if (controller) controller.abort();
    controller = typeof AbortController === 'function' ? new AbortController() : null;
    setStatus(want.stride > 1 ? `loading (1 cell = ${want.stride}×${want.stride} positions, max)…` : 'loading…');
    try {
      const whole = want.q0 === 0 && want.k0 === 0 && want.q1 === n && want.k1 === n;
      if (!whole) await ensureDomain(key, sel);   // else this request gives the domain
      const m = await source.matrix(runId, { ...sel, ...want, signal: controller ? controller.signal : undefined });
      if (destroyed || seq !== fetchSeq) return;
      if (whole && !(domain && domain.key === key)) { domain = { key, values: m.data }; rebuildColor(); }
      loaded = { key, req: want, rows: m.rows, cols: m.cols, data: m.data };
      buildImage();
      setStatus(want.stride > 1 ? `zoomed out: 1 cell = ${want.stride}×${want.stride} positions (their maximum)` : '');
      requestDraw();
    } catch (err) {
      if (destroyed || seq !== fetchSeq || (err && err.name === 'AbortError')) return;
      setStatus(`error: ${err && err.message ? err.message : err}`);
    }
  }

  function rebuildColor() {
    const s = state.get();
    color = createScale({ type: s.scale, ...autoDomain(domain ? domain.values : [], s.scale) });
    legend.update(color, `attention weight · ${selectionTitle(s)}`);
    buildImage();
    requestDraw();
  }

  function buildImage() {
    if (!loaded) { image = null; return; }
    const { rows, cols, data } = loaded;
    if (!image) image = document.createElement('canvas');
    if (image.width !== cols || image.height !== rows) { image.width = Math.max(1, cols); image.height = Math.max(1, rows); }
    if (!rows || !cols) return;
    const g = image.getContext('2d');
    const img = g.createImageData(cols, rows);
    const px = img.data, lut = color.lut;
    for (let i = 0; i < data.length; i++) {
      const c = color.index(data[i]) * 4, o = i * 4;
      px[o] = lut[c]; px[o + 1] = lut[c + 1]; px[o + 2] = lut[c + 2]; px[o + 3] = 255;
    }
    g.putImageData(img, 0, 0);
  }

  // ---- drawing --------------------------------------------------------------------------
  function requestDraw() {
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; draw(); });
  }

  function draw() {
    if (destroyed) return;
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    const W = LEFT + area.width, H = TOP + area.height;
    g.clearRect(0, 0, W, H);
    const s = state.get();
    title.textContent = `${selectionTitle(s)} · ${s.scale} scale · ${n} × ${n}`;

    const mx = (x) => LEFT + (x - view.x0) * view.scale;     // key position → canvas x
    const my = (y) => TOP + (y - view.y0) * view.scale;      // query position → canvas y
    const right = Math.min(LEFT + area.width, mx(n)), bottom = Math.min(TOP + area.height, my(n));

    g.save();
    g.beginPath(); g.rect(LEFT, TOP, right - LEFT, bottom - TOP); g.clip();
    g.fillStyle = '#fff'; g.fillRect(LEFT, TOP, right - LEFT, bottom - TOP);
    if (image && loaded && loaded.rows && loaded.cols) {
      const { req, rows, cols } = loaded;
      g.imageSmoothingEnabled = false;
      g.drawImage(image, 0, 0, cols, rows, mx(req.k0), my(req.q0), cols * req.stride * view.scale, rows * req.stride * view.scale);
    }
    // above the diagonal (a key after its query): masked, drawn light grey
    g.fillStyle = 'rgba(225, 225, 225, 0.55)';
    if (view.scale >= 2) {
      // the staircase of whole cells: row q masks keys q+1 .. n-1
      const win = visibleWindow(view, area);
      for (let q = win.q0; q < win.q1; q++) g.fillRect(mx(q + 1), my(q), mx(n) - mx(q + 1), view.scale);
    } else {
      g.beginPath(); g.moveTo(mx(0), my(0)); g.lineTo(mx(n), my(0)); g.lineTo(mx(n), my(n)); g.closePath(); g.fill();
    }
    const sel = s.selectedToken;
    if (Number.isInteger(sel) && sel >= 0 && sel < n) {
      g.strokeStyle = '#e6550d'; g.lineWidth = 1.5;
      g.strokeRect(mx(0), my(sel), (sel + 1) * view.scale, view.scale);
    }
    if (hover) {
      g.strokeStyle = 'rgba(0,0,0,0.35)'; g.lineWidth = 1;
      g.strokeRect(mx(0) + 0.5, my(hover.q) + 0.5, (hover.q + 1) * view.scale, view.scale);
      g.strokeStyle = '#d62728'; g.lineWidth = 2;
      g.strokeRect(mx(hover.k), my(hover.q), Math.max(2, view.scale), Math.max(2, view.scale));
    }
    g.restore();
    drawAxes(g, mx, my);
  }

  function drawAxes(g, mx, my) {
    const win = visibleWindow(view, area);
    const font = labelFontSize(view.scale);
    g.fillStyle = '#333';
    g.save();
    g.beginPath(); g.rect(0, TOP - 8, LEFT, area.height + 16); g.clip();
    g.textAlign = 'right'; g.textBaseline = 'middle';
    if (font) {
      g.font = `${font}px system-ui, sans-serif`;
      for (let q = win.q0; q < win.q1; q++) {
        g.fillStyle = hover && hover.q === q ? '#d62728' : '#333';
        g.fillText(shortLabel(tokens[q], 11), LEFT - 4, my(q + 0.5), LEFT - 8);
      }
    } else {
      g.font = '11px system-ui, sans-serif';
      const step = tickStep(view.scale, 24);
      for (let q = Math.ceil(win.q0 / step) * step; q < win.q1; q += step) g.fillText(String(q), LEFT - 4, my(q + 0.5));
    }
    g.restore();
    g.save();
    g.beginPath(); g.rect(LEFT - 12, 0, area.width + 24, TOP); g.clip();
    if (font) {
      g.font = `${font}px system-ui, sans-serif`;
      g.textAlign = 'left'; g.textBaseline = 'middle';
      for (let k = win.k0; k < win.k1; k++) {
        g.save();
        g.translate(mx(k + 0.5), TOP - 4); g.rotate(-Math.PI / 2);
        g.fillStyle = hover && hover.k === k ? '#d62728' : '#333';
        g.fillText(shortLabel(tokens[k], 11), 0, 0, TOP - 8);
        g.restore();
      }
    } else {
      g.font = '11px system-ui, sans-serif';
      g.textAlign = 'center'; g.textBaseline = 'bottom';
      const step = tickStep(view.scale, 40);
      for (let k = Math.ceil(win.k0 / step) * step; k < win.k1; k += step) g.fillText(String(k), mx(k + 0.5), TOP - 4);
    }
    g.restore();
    g.fillStyle = '#666'; g.font = '11px system-ui, sans-serif';
    g.textAlign = 'left'; g.textBaseline = 'top';
    g.fillText('key \u2192', 4, 4);
    g.fillText('query \u2193', 4, 18);
  }

  // ---- hover readout --------------------------------------------------------------------
  function loadedValue(q, k) {
    if (!loaded) return null;
    const { req, cols, data } = loaded;
    if (q < req.q0 || q >= req.q1 || k < req.k0 || k >= req.k1) return null;
    return data[Math.floor((q - req.q0) / req.stride) * cols + Math.floor((k - req.k0) / req.stride)];
  }

  function showReadout(cell) {
    readout.replaceChildren();
    clearTimeout(exactTimer);
    if (!cell) {
      delete readout.dataset.query; delete readout.dataset.key; delete readout.dataset.value;
      return;
    }
    const { q, k } = cell;
    readout.dataset.query = String(q);
    readout.dataset.key = String(k);
    const qs = el('span', { class: 'readout-query', text: `query ${tokenReadout(tokens, q)}` });
    const ks = el('span', { class: 'readout-key', text: `key ${tokenReadout(tokens, k)}` });
    const vs = el('span', { class: 'readout-value' });
    readout.append(qs, document.createTextNode(' \u2192 '), ks, document.createTextNode(' : '), vs);
    if (k > q) {
      readout.dataset.value = '0';
      vs.textContent = '0 (a key after its query)';
      return;
    }
    const v = loadedValue(q, k);
    if (loaded && loaded.req.stride === 1 && v !== null) {
      readout.dataset.value = String(v);
      vs.textContent = formatValue(v);
      return;
    }
    // downsampled (or not loaded yet): show the block's maximum, fetch the exact value
    delete readout.dataset.value;
    vs.textContent = v === null ? '\u2026' : `\u2264 ${formatValue(v)} (block max)`;
    const seq = ++exactSeq;
    exactTimer = setTimeout(async () => {
      const s = state.get();
      try {
        const m = await source.matrix(runId, { layer: s.layer, head: s.head, agg: s.agg, q0: q, q1: q + 1, k0: k, k1: k + 1, stride: 1 });
        if (destroyed || seq !== exactSeq) return;
        readout.dataset.value = String(m.data[0]);
        vs.textContent = formatValue(m.data[0]);
      } catch (err) {
        if (seq === exactSeq) vs.textContent = `error: ${err && err.message ? err.message : err}`;
      }
    }, 60);
  }

  function plotPoint(ev) {
    const r = canvas.getBoundingClientRect();
    return { px: ev.clientX - r.left - LEFT, py: ev.clientY - r.top - TOP };
  }

  function updateHover(ev) {
    const { px, py } = plotPoint(ev);
    const inside = px >= 0 && py >= 0 && px < area.width && py < area.height;
    const cell = inside ? cellAt(view, area, px, py) : null;
    const same = (cell && hover && cell.q === hover.q && cell.k === hover.k) || (!cell && !hover);
    hover = cell;
    if (!same) { showReadout(cell); requestDraw(); }
  }

  // ---- interaction ----------------------------------------------------------------------
  function setView(v) {
    view = v;
    atFit = false;
    schedule();
  }

  function onWheel(ev) {
    ev.preventDefault();
    const unit = ev.deltaMode === 1 ? 16 : ev.deltaMode === 2 ? 400 : 1;
    const { px, py } = plotPoint(ev);
    const factor = Math.exp(-ev.deltaY * unit * 0.0015);
    setView(zoomAt(view, area, factor, Math.min(Math.max(px, 0), area.width), Math.min(Math.max(py, 0), area.height)));
    updateHover(ev);
  }

  let drag = null;                   // {x, y, moved}
  function onPointerDown(ev) {
    if (ev.button !== 0) return;
    drag = { x: ev.clientX, y: ev.clientY, moved: false };
    canvas.setPointerCapture(ev.pointerId);
    canvas.style.cursor = 'grabbing';
  }
  function onPointerMove(ev) {
    if (drag) {
      const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (drag.moved || Math.abs(dx) + Math.abs(dy) > 3) {
        drag.moved = true;
        drag.x = ev.clientX; drag.y = ev.clientY;
        setView(panBy(view, area, dx, dy));
      }
    }
    updateHover(ev);
  }
  function onPointerUp(ev) {
    if (!drag) return;
    const wasClick = !drag.moved;
    drag = null;
    canvas.style.cursor = 'crosshair';
    if (canvas.hasPointerCapture(ev.pointerId)) canvas.releasePointerCapture(ev.pointerId);
    if (wasClick && hover) {
      // a click selects the query row's token (the flow view follows)
      const cur = state.get().selectedToken;
      state.set({ selectedToken: cur === hover.q ? null : hover.q });
    }
  }
  function onPointerLeave() {
    if (drag) return;
    hover = null;
    showReadout(null);
    requestDraw();
  }
  function onKey(ev) {
    const c = { px: area.width / 2, py: area.height / 2 };
    const step = 40;
    const actions = {
      '+': () => zoomAt(view, area, 1.5, c.px, c.py), '=': () => zoomAt(view, area, 1.5, c.px, c.py),
      '-': () => zoomAt(view, area, 1 / 1.5, c.px, c.py), '0': () => null,
      ArrowLeft: () => panBy(view, area, step, 0), ArrowRight: () => panBy(view, area, -step, 0),
      ArrowUp: () => panBy(view, area, 0, step), ArrowDown: () => panBy(view, area, 0, -step),
    };
    const f = actions[ev.key];
    if (!f) return;
    ev.preventDefault();
    const v = f();
    if (v) setView(v); else reset();
  }
  function reset() {
    atFit = true;
    view = fitView(area);
    schedule();
  }

  canvas.addEventListener('wheel', onWheel, { passive: false });
  canvas.addEventListener('pointerdown', onPointerDown);
  canvas.addEventListener('pointermove', onPointerMove);
  canvas.addEventListener('pointerup', onPointerUp);
  canvas.addEventListener('pointercancel', onPointerUp);
  canvas.addEventListener('pointerleave', onPointerLeave);
  canvas.addEventListener('keydown', onKey);
  canvas.addEventListener('dblclick', (ev) => {
    const { px, py } = plotPoint(ev);
    setView(zoomAt(view, area, view.scale >= MAX_SCALE ? 1 : 2, px, py));
  });
  resetBtn.addEventListener('click', reset);

  const unsubscribe = state.subscribe((next, prev) => {
    if (selectionKey(next) !== selectionKey(prev)) {
      fetchSeq++;  // a response to the old selection must not be drawn
      if (controller) controller.abort();
      loaded = null; image = null;
      requestDraw();
      if (hover) showReadout(hover);
      schedule();
    } else if (next.scale !== prev.scale) {
      rebuildColor();
    } else if (next.selectedToken !== prev.selectedToken) {
      requestDraw();
    }
  });

  const ro = typeof ResizeObserver === 'function' ? new ResizeObserver(() => resize()) : null;
  if (ro) ro.observe(root); else window.addEventListener('resize', resize);
  resize();
  if (n === 0) setStatus('this run has no stored attention yet');

  return {
    destroy() {
      destroyed = true;
      unsubscribe();
      if (ro) ro.disconnect(); else window.removeEventListener('resize', resize);
      if (controller) controller.abort();
      clearTimeout(fetchTimer); clearTimeout(exactTimer);
      if (frame) cancelAnimationFrame(frame);
      legend.destroy();
      root.remove();
    },
    /** For tests and the page: the current viewport and the last request. */
    debug() { return { view: { ...view }, area: { ...area }, loaded: loaded && loaded.req, dpr }; },
  };
}
