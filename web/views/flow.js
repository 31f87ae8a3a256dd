// The flow view: for one token, how its attention spreads over the earlier positions in
// every layer (the head mean of that layer, one row each, layer 0 at the top), and the
// attention rollout through the last layer (the residual stream followed through every
// layer, Abnar & Zuidema 2020) as the last row. Each row draws a fan of lines from the
// token (top) to the positions it attends to (bottom), line opacity and width = weight,
// over a strip of cells with every weight; at the right, the row's top 3 and its entropy.
//
// The token is state.selectedToken, else the focused token of the text views, else the
// last one; its row follows state.reading like the text views (text_tokens.js storedRow).
// Test hooks: the root carries data-token / data-row; each row <g> carries data-layer
// ("rollout" for the rollout row), data-entropy and data-top (JSON [[index, weight], ...]).

import { createScale, autoDomain, formatValue } from 'attnscope/color/scale.js';
import { createLegend } from 'attnscope/ui/legend.js';
import { storedRow } from 'attnscope/views/text_tokens.js';
import { summarize, columnLayout, binRow, rowsOf } from 'attnscope/views/flow_layout.js';
import { shortLabel, tokenReadout } from 'attnscope/views/token_label.js';
import { tickStep } from 'attnscope/views/matrix_viewport.js';

const SVG = 'http://www.w3.org/2000/svg';
const LEFT = 64;            // row labels
const SUMMARY = 340;        // per-row summary at the right
const FAN = 40;             // height of a row's fan of lines
const STRIP = 12;           // height of a row's strip of cells
const ROW_GAP = 8;
const LABELS = 70;          // token labels at the top (when they fit)
const MAX_LINES = 24;       // fan lines per row: the strongest ones

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v; else if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** The token the view shows: selected, else focused, else the last one. */
export function flowToken(s, nTokens) {
  if (Number.isInteger(s.selectedToken) && s.selectedToken >= 0 && s.selectedToken < nTokens) return s.selectedToken;
  if (s.focus && Number.isInteger(s.focus.index) && s.focus.index >= 0 && s.focus.index < nTokens) return s.focus.index;
  return nTokens - 1;
}

export function mountFlow(container, ctx) {
  const { source, state, runId, manifest } = ctx;
  const tokens = manifest.tokens || [];
  const nRows = rowsOf(manifest);
  const nLayers = (manifest.attention || manifest.model || {}).n_layers || 0;

  const heading = el('div', { class: 'flow-heading' });
  heading.style.cssText = 'font-size:14px;margin:4px 0';
  const hint = el('p', { class: 'flow-hint', text: 'Each row: the token\u2019s attention in one layer (mean over heads), then the rollout through all layers. Click a position to follow that token.' });
  hint.style.cssText = 'margin:2px 0 6px;color:#666;font-size:12px';
  const legendBox = el('div', { class: 'flow-legend' });
  const status = el('p', { class: 'flow-status', 'aria-live': 'polite' });
  status.style.cssText = 'color:#666;font-size:12px;margin:2px 0';
  const scroller = el('div', { class: 'flow-scroll' });
  scroller.style.overflowX = 'auto';
  const readout = el('div', { class: 'flow-readout' });
  readout.style.cssText = 'min-height:1.5em;font-size:13px;font-variant-numeric:tabular-nums';
  const root = el('section', { class: 'attnscope-flow' }, heading, hint, legendBox, status, scroller, readout);
  container.append(root);
  const legend = createLegend(legendBox);

  let current = null;            // {token, row, layers: [Float32Array|null], rollout, error}
  let seq = 0;
  let destroyed = false;
  let geometry = null;           // for hover: {bins, binSize, colWidth, rowsY: [{y, name}], plotW}

  function pick() {
    const s = state.get();
    const token = flowToken(s, Math.min(tokens.length || nRows, Math.max(nRows, tokens.length)));
    const generated = !!(tokens[token] && tokens[token].generated);
    const row = storedRow(token, s.reading, generated, nRows);
    return { token, row };
  }

  async function load() {
    const { token, row } = pick();
    const mySeq = ++seq;
    root.dataset.token = String(token);
    if (row === null || row < 0 || nLayers === 0) {
      current = { token, row: null, layers: [], rollout: null };
      root.dataset.row = '';
      render();
      return;
    }
    root.dataset.row = String(row);
    current = { token, row, layers: new Array(nLayers).fill(null), rollout: null, error: null };
    status.textContent = 'loading\u2026';
    render();
    const req = { q0: row, q1: row + 1, k0: 0, k1: row + 1, stride: 1 };
    const layerJobs = Array.from({ length: nLayers }, (_, l) =>
      source.matrix(runId, { ...req, layer: l, head: 0, agg: 'head-mean' }).then((m) => {
        if (mySeq !== seq || destroyed) return;
        current.layers[l] = m.data;
      }));
    try {
      await Promise.all(layerJobs);
      if (mySeq !== seq || destroyed) return;
      status.textContent = 'computing the rollout\u2026';
      render();
      const m = await source.matrix(runId, { ...req, layer: nLayers - 1, head: 0, agg: 'rollout' });
      if (mySeq !== seq || destroyed) return;
      current.rollout = m.data;
      status.textContent = '';
      render();
    } catch (err) {
      if (mySeq !== seq || destroyed) return;
      status.textContent = `error: ${err && err.message ? err.message : err}`;
      render();
    }
  }

  function rowsToDraw() {
    const out = current.layers.map((data, l) => ({ name: String(l), label: `Layer ${l}`, data }));
    out.push({ name: 'rollout', label: 'Rollout', data: current.rollout });
    return out;
  }

  function render() {
    scroller.replaceChildren();
    geometry = null;
    if (!current) return;
    const s = state.get();
    const { token, row } = current;
    const tokenText = tokenReadout(tokens, token, 30);
    if (row === null) {
      heading.textContent = `Token ${tokenText}: no stored attention row for it under this reading.`;
      legend.clear();
      return;
    }
    const readingNote = row === token ? `its own row ${row}` : `row ${row}, the position that produced it`;
    heading.textContent = `Attention flow of token ${tokenText} (${readingNote})`;

    const rows = rowsToDraw();
    const all = [];
    for (const r of rows) if (r.data) for (const v of r.data) all.push(v);
    const color = createScale({ type: s.scale, ...autoDomain(all, s.scale) });
    if (all.length) legend.update(color, 'attention weight (all rows share this scale)'); else legend.clear();

    const width = Math.max(LEFT + SUMMARY + 240, scroller.clientWidth || root.clientWidth || 900);
    const plotW = width - LEFT - SUMMARY;
    const n = row + 1;                                     // keys 0..row
    const { bins, binSize, colWidth } = columnLayout(n, plotW, 3);
    const showLabels = binSize === 1 && colWidth >= 11;
    const top = showLabels ? LABELS : 8;
    const rowH = FAN + STRIP + ROW_GAP;
    const height = top + rows.length * rowH + 14 + 10;
    const colX = (c) => LEFT + c * colWidth;
    const colOf = (k) => Math.floor(k / binSize);
    const qCol = colOf(row);

    const root$ = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, class: 'flow-svg', role: 'img',
      'aria-label': `Attention of token ${token} across ${nLayers} layers and the rollout` });
    root$.style.display = 'block';
    root$.style.font = '12px system-ui, sans-serif';

    // token labels
    if (showLabels) {
      const g = svg('g', { class: 'flow-token-labels' });
      const font = Math.min(12, Math.floor(colWidth * 0.85));
      for (let k = 0; k < n; k++) {
        const x = colX(k) + colWidth / 2;
        const t = svg('text', { x: 0, y: 0, transform: `translate(${x},${top - 6}) rotate(-90)`, 'font-size': font,
          'dominant-baseline': 'middle', 'data-flow-token': k, fill: k === row ? '#d62728' : '#333' }, shortLabel(tokens[k], 10));
        t.style.cursor = 'pointer';
        g.append(t);
      }
      root$.append(g);
    }
    // the query column
    root$.append(svg('rect', { x: colX(qCol), y: top - 2, width: Math.max(1, colWidth), height: rows.length * rowH, fill: 'rgba(214,39,40,0.07)' }));

    const rowsY = [];
    rows.forEach((r, i) => {
      const y = top + i * rowH + (r.name === 'rollout' ? 6 : 0);
      rowsY.push({ y, name: r.name, data: r.data });
      const g = svg('g', { class: 'flow-row', 'data-layer': r.name });
      g.append(svg('text', { x: 4, y: y + FAN + STRIP / 2, 'dominant-baseline': 'middle', fill: '#333',
        'font-weight': r.name === 'rollout' ? 700 : 400 }, r.label));
      if (r.name === 'rollout') g.append(svg('line', { x1: 0, x2: width, y1: y - 7, y2: y - 7, stroke: '#bbb', 'stroke-dasharray': '3 3' }));
      if (!r.data) {
        g.append(svg('text', { x: LEFT, y: y + FAN + STRIP / 2, 'dominant-baseline': 'middle', fill: '#999' },
          r.name === 'rollout' ? 'computing\u2026' : 'loading\u2026'));
        root$.append(g);
        return;
      }
      const binned = binRow(r.data, bins);
      // strip of cells
      const strip = svg('g', { class: 'flow-strip' });
      binned.forEach((v, c) => {
        strip.append(svg('rect', { x: colX(c), y: y + FAN, width: Math.max(1, colWidth - (colWidth > 4 ? 1 : 0)), height: STRIP, fill: color.css(v) }));
      });
      strip.append(svg('rect', { x: LEFT, y: y + FAN, width: n / binSize * colWidth, height: STRIP, fill: 'none', stroke: '#ccc' }));
      g.append(strip);
      // fan: from the token (top of the row) to the strongest positions (bottom)
      const sum = summarize(r.data, { k: 3 });
      const strongest = summarize(r.data, { k: MAX_LINES }).top;
      const fan = svg('g', { class: 'flow-fan' });
      const x0 = colX(qCol) + colWidth / 2;
      for (const { index, weight } of strongest.slice().reverse()) {
        if (!(weight > 0)) continue;
        const p = color.position(weight);
        const x1 = colX(colOf(index)) + colWidth / 2;
        fan.append(svg('path', {
          d: `M${x0},${y + 2} C${x0},${y + FAN * 0.6} ${x1},${y + FAN * 0.4} ${x1},${y + FAN}`,
          fill: 'none', stroke: color.css(Math.max(weight, color.min)), 'stroke-width': (0.75 + 4 * p).toFixed(2),
          'stroke-opacity': (0.25 + 0.75 * p).toFixed(2), 'data-key': index, 'data-weight': String(weight),
        }));
      }
      fan.append(svg('circle', { cx: x0, cy: y + 2, r: 3, fill: '#d62728' }));
      g.append(fan);
      // summary
      g.dataset.entropy = String(sum.entropyBits);
      g.dataset.top = JSON.stringify(sum.top.map((t) => [t.index, t.weight]));
      const text = svg('text', { x: LEFT + plotW + 12, y: y + FAN / 2 + 6, 'dominant-baseline': 'middle', fill: '#222' });
      sum.top.forEach((t, i) => {
        if (i) text.append(svg('tspan', { fill: '#999' }, '  '));
        text.append(svg('tspan', { 'font-weight': 600 }, shortLabel(tokens[t.index], 9)));
        text.append(svg('tspan', { fill: '#555' }, ` ${formatValue(t.weight)}`));
      });
      g.append(text);
      g.append(svg('text', { x: LEFT + plotW + 12, y: y + FAN + STRIP / 2 + 2, 'dominant-baseline': 'middle', fill: '#666', 'font-size': 11 },
        `entropy ${sum.entropyBits.toFixed(2)} bits of ${Math.log2(n).toFixed(2)} max`));
      root$.append(g);
    });
    // position ticks under the last row when there are no labels
    if (!showLabels) {
      const yT = top + rows.length * rowH + 14;
      const step = tickStep(colWidth / binSize, 48);
      for (let k = 0; k < n; k += step) root$.append(svg('text', { x: colX(colOf(k)), y: yT, fill: '#666', 'font-size': 10 }, String(k)));
    }
    scroller.append(root$);
    geometry = { bins, binSize, colWidth, rowsY, plotW, n, svg: root$ };
  }

  // hover and click: which (row, position) is under the pointer
  function hit(ev) {
    if (!geometry) return null;
    const r = geometry.svg.getBoundingClientRect();
    const x = ev.clientX - r.left, y = ev.clientY - r.top;
    const c = Math.floor((x - LEFT) / geometry.colWidth);
    if (c < 0 || c >= geometry.bins.length) return null;
    const k = geometry.bins[c][0];
    const rowHit = geometry.rowsY.find((ry) => y >= ry.y && y < ry.y + FAN + STRIP);
    return { k, c, row: rowHit || null, inLabels: y < (geometry.rowsY[0] ? geometry.rowsY[0].y : 0) };
  }

  function onMove(ev) {
    const h = hit(ev);
    readout.replaceChildren();
    for (const key of ['layer', 'key', 'value']) delete readout.dataset[key];
    if (!h) return;
    const [a, b] = geometry.bins[h.c];
    const keyText = b - a > 1 ? `positions ${a}\u2013${b - 1}` : `key ${tokenReadout(tokens, a)}`;
    if (!h.row || !h.row.data) { readout.textContent = keyText; return; }
    let v = 0;
    for (let k = a; k < b; k++) if (h.row.data[k] > v) v = h.row.data[k];
    readout.dataset.layer = h.row.name;
    readout.dataset.key = String(a);
    readout.dataset.value = String(v);
    const where = h.row.name === 'rollout' ? 'rollout' : `layer ${h.row.name}`;
    readout.textContent = `${where}: ${keyText} \u2190 ${formatValue(v)}${b - a > 1 ? ' (max)' : ''}`;
  }

  function onClick(ev) {
    const h = hit(ev);
    if (!h) return;
    state.set({ selectedToken: h.k });
  }

  scroller.addEventListener('pointermove', onMove);
  scroller.addEventListener('pointerleave', () => { readout.replaceChildren(); for (const key of ['layer', 'key', 'value']) delete readout.dataset[key]; });
  scroller.addEventListener('click', onClick);

  const unsubscribe = state.subscribe((next, prev) => {
    const tokenChanged = next.selectedToken !== prev.selectedToken || next.reading !== prev.reading ||
      (next.selectedToken === null && (next.focus && next.focus.index) !== (prev.focus && prev.focus.index));
    if (tokenChanged) {
      const { token, row } = pick();
      if (!current || token !== current.token || row !== current.row) load();
    } else if (next.scale !== prev.scale) {
      render();
    }
  });

  let lastWidth = 0;
  const ro = typeof ResizeObserver === 'function' ? new ResizeObserver(() => {
    const w = root.clientWidth;
    if (w !== lastWidth) { lastWidth = w; render(); }
  }) : null;
  if (ro) ro.observe(root);

  load();

  return {
    destroy() {
      destroyed = true;
      seq++;
      unsubscribe();
      if (ro) ro.disconnect();
      legend.destroy();
      root.remove();
    },
  };
}
