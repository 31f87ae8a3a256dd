// The compare view: two runs side by side (e.g. two phrasings of one request). One state
// drives both (layer, head, aggregate, scale, reading). Hover a token on either side: both
// sides shade what that token attended to (observer reading), the other side for the
// same position when it lies in the shared prefix; a click freezes the focus (another
// click on it, or Escape, releases it). The shading of the two sides shares one colour
// scale (the same max), and so do the two heatmaps. The shared prefix is drawn in its
// own block on both sides so that the texts after it start level, and is outlined on
// the heatmaps (same cell size on both sides, so it covers the same pixels).
//
// mountCompare(container, {source, state, runs: [{runId, manifest}, {runId, manifest}]})
// (an array of two view contexts [{source, state, runId, manifest}, ...] is accepted too).
// Test hooks: root data-prefix; per side (data-side "a" | "b"): see compare_side.js.

import { createScale, autoDomain, formatValue } from 'attnscope/color/scale.js';
import { createLegend } from 'attnscope/ui/legend.js';
import { storedRow, tokenLabel } from 'attnscope/views/text_tokens.js';
import { alignRuns, counterpart, sharedCellSize } from 'attnscope/views/compare_align.js';
import { strideFor } from 'attnscope/views/matrix_viewport.js';
import { topK, rowsOf } from 'attnscope/views/flow_layout.js';
import { createCompareSide } from 'attnscope/views/compare_side.js';

const HEAT_MAX = 320;      // CSS px

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v; else if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function normalize(ctx) {
  if (Array.isArray(ctx)) {
    if (ctx.length < 2) throw new Error(`invalid compare: ${ctx.length} runs, need 2`);
    return { source: ctx[0].source, state: ctx[0].state, runs: ctx.slice(0, 2).map((c) => ({ runId: c.runId, manifest: c.manifest })) };
  }
  if (!ctx || !Array.isArray(ctx.runs) || ctx.runs.length < 2) throw new Error('invalid compare: need runs [{runId, manifest}, {runId, manifest}]');
  return { source: ctx.source, state: ctx.state, runs: ctx.runs.slice(0, 2) };
}

function selectionText(s) {
  if (s.agg === 'layer-mean') return 'mean over all layers';
  if (s.agg === 'none') return `layer ${s.layer}, head ${s.head}`;
  return `layer ${s.layer}, ${{ 'head-mean': 'mean over heads', 'head-max': 'max over heads', rollout: 'rollout' }[s.agg]}`;
}

export function mountCompare(container, ctx) {
  const { source, state, runs } = normalize(ctx);
  const names = ['a', 'b'];
  const { prefix } = alignRuns(runs[0].manifest.tokens || [], runs[1].manifest.tokens || []);
  const info = runs.map((r) => ({ ...r, n: rowsOf(r.manifest), tokens: r.manifest.tokens || [] }));

  const hint = el('p', { class: 'help compare-help', text: 'Hover a token on either side: both sides shade what it attended to (the other side for the same position while it is in the shared prefix). Click to freeze, click again or Escape to release.' });
  const legendBox = el('div', { class: 'compare-legend' });
  const grid = el('div', { class: 'compare-grid' });
  grid.style.cssText = 'display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:0.5rem 1.25rem;align-items:start';
  const heatLegendBox = el('div', { class: 'compare-heat-legend' });
  const status = el('p', { class: 'compare-status', 'aria-live': 'polite' });
  status.style.cssText = 'color:#666;font-size:12px;margin:2px 0';
  const root = el('section', { class: 'attnscope-compare', 'data-prefix': String(prefix) }, hint, legendBox, status, grid, heatLegendBox);
  root.tabIndex = -1;
  container.append(root);
  const legend = createLegend(legendBox);
  const heatLegend = createLegend(heatLegendBox);

  const sides = info.map((r, i) => createCompareSide({ side: names[i], runId: r.runId, manifest: r.manifest, prefix }));
  const row = (key) => { for (const s of sides) grid.append(s.cells[key]); };
  row('title');
  row('prompt');
  row('readout');
  if (prefix > 0) row('prefix');
  const divider = el('div', { class: 'compare-divider' });
  divider.style.cssText = 'grid-column:1/-1;font-size:12px;color:#6f42c1;border-top:1px dashed #6f42c1;padding-top:2px';
  const diff = prefix < info[0].tokens.length || prefix < info[1].tokens.length;
  divider.textContent = prefix > 0
    ? `\u2191 shared prefix: the first ${prefix} token${prefix === 1 ? '' : 's'} are identical${diff ? ' \u2014 the runs differ from here \u2193' : ''}`
    : 'the two runs share no prefix';
  grid.append(divider);
  row('tail');
  row('heat');

  let focus = null;              // {side: 0 | 1, index, frozen}
  let heat = [null, null];       // per side: {key, m: {rows, cols, data, stride}}
  let heatScale = null;
  let focusSeq = 0, heatSeq = 0;
  let destroyed = false;
  let dpr = window.devicePixelRatio || 1;

  const selOf = (s) => ({ layer: s.layer, head: s.head, agg: s.agg });
  const nMax = Math.max(1, info[0].n, info[1].n);

  function heatSize() {
    const w = sides[0].cells.heat.clientWidth || 300;
    return Math.max(80, Math.min(HEAT_MAX, w));
  }

  // ---- heatmaps -------------------------------------------------------------------------
  async function loadHeat() {
    const my = ++heatSeq;
    const s = state.get();
    const size = heatSize();
    const cell = sharedCellSize(info[0].n, info[1].n, size);
    const stride = strideFor(cell, dpr);
    heat = [null, null];  // never shade with the previous selection's values
    status.textContent = 'loading\u2026';
    try {
      const ms = await Promise.all(info.map((r) => (r.n > 0
        ? source.matrix(r.runId, { ...selOf(s), q0: 0, q1: r.n, k0: 0, k1: r.n, stride })
        : Promise.resolve({ rows: 0, cols: 0, data: new Float32Array(0) }))));
      if (my !== heatSeq || destroyed) return;
      heat = ms.map((m) => ({ m: { ...m, stride }, size, cell }));
      status.textContent = '';
      paintFocus();                  // draws the heatmaps too
    } catch (err) {
      if (my !== heatSeq || destroyed) return;
      status.textContent = `error: ${err && err.message ? err.message : err}`;
    }
  }

  function focusRows() {
    // the row each side shades (null: none)
    const s = state.get();
    return info.map((r, i) => {
      if (!focus) return { index: null, row: null };
      const index = i === focus.side ? focus.index : counterpart(focus.index, prefix);
      if (index === null || index >= r.tokens.length) return { index: null, row: null };
      return { index, row: storedRow(index, s.reading, !!r.tokens[index].generated, r.n) };
    });
  }

  function drawHeats() {
    if (!heat[0] || !heat[1]) return;
    const s = state.get();
    const values = [];
    for (const h of heat) for (const v of h.m.data) values.push(v);
    heatScale = createScale({ type: s.scale, ...autoDomain(values, s.scale) });
    heatLegend.update(heatScale, `heatmaps: ${selectionText(s)} \u00b7 both share this scale`);
    const fr = focusRows();
    sides.forEach((side, i) => side.drawHeat({
      m: heat[i].m, cell: heat[i].cell, n: info[i].n, size: heat[i].size, scale: heatScale, dpr,
      marks: { prefix, row: fr[i].row },
    }));
  }

  // ---- focus shading --------------------------------------------------------------------
  async function rowWeights(i, r) {
    const h = heat[i];
    if (h && h.m.stride === 1 && h.m.cols === info[i].n) {
      return h.m.data.subarray(r * h.m.cols, r * h.m.cols + r + 1);
    }
    const s = state.get();
    const m = await source.matrix(info[i].runId, { ...selOf(s), q0: r, q1: r + 1, k0: 0, k1: r + 1, stride: 1 });
    return m.data;
  }

  function describe(i, fr, weights) {
    const t = info[i].tokens[fr.index];
    const bits = [`\u201c${tokenLabel(t)}\u201d #${fr.index}`];
    if (fr.row !== null && fr.row !== fr.index) bits.push(`row ${fr.row}`);
    if (focus && focus.frozen && i === focus.side) bits.push('frozen');
    if (weights) {
      const top = topK(weights, 3).map((x) => `\u201c${tokenLabel(info[i].tokens[x.index])}\u201d ${formatValue(x.weight)}`);
      bits.push(`looked most at ${top.join(', ')}`);
    }
    return bits.join(' \u00b7 ');
  }

  async function paintFocus() {
    const my = ++focusSeq;
    const fr = focusRows();
    drawHeats();
    sides.forEach((side, i) => side.markFocus(fr[i].index, focus && focus.frozen && i === focus.side));
    if (!focus) {
      for (const side of sides) { side.clearShade(); side.setReadout('Hover a token.'); }
      legend.clear(`shading: ${selectionText(state.get())}`);
      return;
    }
    let weights;
    try {
      weights = await Promise.all(fr.map((f, i) => (f.row === null ? null : rowWeights(i, f.row))));
    } catch (err) {
      if (my !== focusSeq || destroyed) return;
      status.textContent = `error: ${err && err.message ? err.message : err}`;
      return;
    }
    if (my !== focusSeq || destroyed) return;
    const s = state.get();
    const values = [];
    for (const w of weights) if (w) for (const v of w) values.push(v);
    const scale = createScale({ type: s.scale, ...autoDomain(values, s.scale) });
    legend.update(scale, `shading: attention paid by the focused token \u00b7 ${selectionText(s)} \u00b7 both sides share this scale`);
    sides.forEach((side, i) => {
      if (weights[i]) {
        side.shade(weights[i], scale);
        side.setReadout(describe(i, fr[i], weights[i]));
      } else {
        side.clearShade();
        if (fr[i].index === null) side.setReadout(`no counterpart: #${focus.index} is after the shared prefix`);
        else side.setReadout(`${describe(i, fr[i], null)} \u00b7 no attention stored for this position`);
      }
    });
  }

  function setFocus(f) {
    const same = (focus === f) || (focus && f && focus.side === f.side && focus.index === f.index && focus.frozen === f.frozen);
    if (same) return;
    focus = f;
    paintFocus();
  }

  // ---- interaction ----------------------------------------------------------------------
  function hitToken(target) {
    for (let i = 0; i < sides.length; i++) {
      const idx = sides[i].indexOf(target);
      if (idx !== null) return { side: i, index: idx };
    }
    return null;
  }

  function onOver(ev) {
    const h = hitToken(ev.target);
    if (!h || (focus && focus.frozen)) return;
    setFocus({ ...h, frozen: false });
  }
  function onLeave(ev) {
    if (focus && !focus.frozen && !hitToken(ev.relatedTarget)) setFocus(null);
  }
  function onClick(ev) {
    const h = hitToken(ev.target);
    if (!h) return;
    if (focus && focus.frozen && focus.side === h.side && focus.index === h.index) setFocus({ ...h, frozen: false });
    else setFocus({ ...h, frozen: true });
  }
  function onKey(ev) {
    if (ev.key === 'Escape') setFocus(null);
  }
  for (const side of sides) {
    for (const b of [side.cells.prefix, side.cells.tail]) {
      b.addEventListener('pointerover', onOver);
      b.addEventListener('pointerleave', onLeave);
      b.addEventListener('click', onClick);
    }
  }
  root.addEventListener('keydown', onKey);

  sides.forEach((side, i) => {
    side.heatCanvas.addEventListener('pointermove', (ev) => {
      const h = heat[i];
      if (!h) return;
      const r = side.heatCanvas.getBoundingClientRect();
      const q = Math.floor((ev.clientY - r.top) / h.cell), k = Math.floor((ev.clientX - r.left) / h.cell);
      if (q < 0 || k < 0 || q >= info[i].n || k >= info[i].n) { side.heatReadoutText(null); return; }
      const { m } = h;
      const v = m.data[Math.floor(q / m.stride) * m.cols + Math.floor(k / m.stride)];
      side.heatReadoutText(q, k, k > q ? 0 : v, m.stride === 1 || k > q);
    });
    side.heatCanvas.addEventListener('pointerleave', () => side.heatReadoutText(null));
  });

  const unsubscribe = state.subscribe((next, prev) => {
    if (next.layer !== prev.layer || next.head !== prev.head || next.agg !== prev.agg) loadHeat();
    else if (next.scale !== prev.scale || next.reading !== prev.reading) { drawHeats(); paintFocus(); }
  });

  let lastSize = 0;
  const ro = typeof ResizeObserver === 'function' ? new ResizeObserver(() => {
    const size = heatSize();
    const d = window.devicePixelRatio || 1;
    if (size !== lastSize || d !== dpr) { lastSize = size; dpr = d; loadHeat(); }
  }) : null;
  if (ro) ro.observe(root);
  lastSize = heatSize();
  legend.clear(`shading: ${selectionText(state.get())}`);
  for (const side of sides) side.setReadout('Hover a token.');
  loadHeat();

  return {
    destroy() {
      destroyed = true;
      focusSeq++; heatSeq++;
      unsubscribe();
      if (ro) ro.disconnect();
      legend.destroy();
      heatLegend.destroy();
      root.remove();
    },
  };
}
