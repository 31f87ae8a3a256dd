// One side of the compare view: the run's title and prompt, its tokens (the shared prefix
// and the rest in separate blocks, so the two sides' rests start level), the observer
// shading of a token, and a small heatmap. compare.js owns the data and the focus.
//
// Test hooks: each side's elements carry data-side ("a" | "b") and data-run; tokens carry
// data-token-index and, while shaded, data-weight (as in the text views); the heatmap
// canvas carries data-rows / data-cols.

import { tokenElement } from 'attnscope/views/text.js';
import { tokenReadout } from 'attnscope/views/token_label.js';
import { formatValue } from 'attnscope/color/scale.js';

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v; else if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

/**
 * Builds one side's cells (appended to the shared grid in row order by compare.js).
 * Returns {cells: {title, prompt, readout, prefix, tail, heat}, shade, clearShade, markFocus,
 * drawHeat, indexOf, heatCanvas}.
 */
export function createCompareSide({ side, runId, manifest, prefix }) {
  const tokens = manifest.tokens || [];
  const common = { 'data-side': side, 'data-run': runId };
  const model = (manifest.model && (manifest.model.name || manifest.model.file_name)) || '';

  const title = el('h3', { ...common, class: 'compare-title' });
  title.append(el('span', { class: 'compare-run', text: runId }));
  if (model) title.append(el('span', { class: 'compare-model', text: ` · ${model}` }));
  title.style.cssText = 'font-size:1rem;margin:0';

  const prompt = el('div', { ...common, class: 'compare-prompt' },
    el('span', { class: 'compare-prompt-label', text: 'Prompt: ' }),
    el('span', { class: 'compare-prompt-text', text: String(manifest.prompt ?? '') }));
  prompt.style.cssText = 'white-space:pre-wrap;overflow-wrap:anywhere;max-height:8em;overflow:auto;font-size:0.9rem;color:#444';

  const readout = el('div', { ...common, class: 'readout compare-readout' });

  const els = [];
  function block(from, to, cls) {
    const b = el('div', { ...common, class: `tokens compare-tokens ${cls}` });
    b.style.maxHeight = 'none';
    for (let i = from; i < to; i++) {
      const t = tokenElement(tokens[i], i);
      els[i] = t;
      b.append(t, document.createElement('wbr'));
    }
    return b;
  }
  const prefixBlock = block(0, prefix, 'compare-prefix');
  const tailBlock = block(prefix, tokens.length, 'compare-tail');
  if (prefix === tokens.length) tailBlock.append(el('span', { class: 'compare-empty', text: '(nothing after the shared prefix)' }));

  const heatCanvas = el('canvas', { ...common, class: 'compare-heat', 'data-rows': String(manifest.n_rows ?? ''), 'data-cols': String(manifest.n_rows ?? '') });
  heatCanvas.style.imageRendering = 'pixelated';
  heatCanvas.style.display = 'block';
  const heatReadout = el('div', { ...common, class: 'readout compare-heat-readout' });
  const heat = el('div', { ...common, class: 'compare-heat-box' }, heatCanvas, heatReadout);

  let shaded = [];
  let focusEl = null;

  function clearShade() {
    for (const e of shaded) {
      e.style.backgroundColor = '';
      e.style.color = '';
      e.classList.remove('shaded');
      delete e.dataset.weight;
    }
    shaded = [];
    prefixBlock.classList.remove('has-focus');
    tailBlock.classList.remove('has-focus');
  }

  /** Shade tokens 0..row by weights (Float32Array of A[row, 0..row]) with a colour scale. */
  function shade(weights, scale) {
    clearShade();
    prefixBlock.classList.add('has-focus');
    tailBlock.classList.add('has-focus');
    for (let k = 0; k < weights.length && k < els.length; k++) {
      const e = els[k];
      const w = weights[k];
      e.style.backgroundColor = scale.css(w);
      e.style.color = scale.ink(w);
      e.dataset.weight = String(w);
      e.classList.add('shaded');
      shaded.push(e);
    }
  }

  function markFocus(index, frozen) {
    if (focusEl) focusEl.classList.remove('focus', 'frozen');
    focusEl = Number.isInteger(index) ? els[index] || null : null;
    if (focusEl) {
      focusEl.classList.add('focus');
      focusEl.classList.toggle('frozen', !!frozen);
    }
  }

  function setReadout(text) {
    readout.textContent = text;
  }

  /**
   * Draws the heatmap: `m` {rows, cols, data, stride} of the whole matrix, `cell` CSS px
   * per position (shared by both sides), `n` positions, `size` CSS px, `marks`
   * {prefix, row} (the shared prefix square and the focused row).
   */
  function drawHeat({ m, cell, n, size, scale, dpr, marks }) {
    heatCanvas.style.width = `${size}px`;
    heatCanvas.style.height = `${size}px`;
    heatCanvas.width = Math.round(size * dpr);
    heatCanvas.height = Math.round(size * dpr);
    const g = heatCanvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, size, size);
    g.fillStyle = '#f3f3f3';
    g.fillRect(0, 0, size, size);
    if (!m) return;
    const img = new ImageData(Math.max(1, m.cols), Math.max(1, m.rows));
    const lut = scale.lut;
    for (let i = 0; i < m.data.length; i++) {
      const c = 4 * scale.index(m.data[i]), o = 4 * i;
      img.data[o] = lut[c]; img.data[o + 1] = lut[c + 1]; img.data[o + 2] = lut[c + 2]; img.data[o + 3] = 255;
    }
    const off = document.createElement('canvas');
    off.width = img.width; off.height = img.height;
    off.getContext('2d').putImageData(img, 0, 0);
    g.save();
    g.beginPath(); g.rect(0, 0, n * cell, n * cell); g.clip();
    g.imageSmoothingEnabled = false;
    g.drawImage(off, 0, 0, m.cols * m.stride * cell, m.rows * m.stride * cell);
    // above the diagonal (a key after its query): masked
    g.fillStyle = 'rgba(225, 225, 225, 0.6)';
    if (cell >= 2) {
      for (let q = 0; q < n - 1; q++) g.fillRect((q + 1) * cell, q * cell, (n - q - 1) * cell, cell);
    } else {
      g.beginPath(); g.moveTo(0, 0); g.lineTo(n * cell, 0); g.lineTo(n * cell, n * cell); g.closePath(); g.fill();
    }
    g.restore();
    g.lineWidth = 1;
    if (marks.prefix > 0) {
      g.setLineDash([4, 3]);
      g.strokeStyle = '#6f42c1';
      g.strokeRect(0.5, 0.5, marks.prefix * cell - 1, marks.prefix * cell - 1);
      g.setLineDash([]);
    }
    if (Number.isInteger(marks.row) && marks.row >= 0 && marks.row < n) {
      g.strokeStyle = '#c2255c';
      g.lineWidth = 1.5;
      g.strokeRect(0, marks.row * cell, (marks.row + 1) * cell, Math.max(1.5, cell));
    }
  }

  /** The token index under an event target in this side's text, or null. */
  function indexOf(target) {
    const e = target && target.closest ? target.closest('[data-token-index]') : null;
    if (!e || !(prefixBlock.contains(e) || tailBlock.contains(e))) return null;
    return Number(e.dataset.tokenIndex);
  }

  function heatReadoutText(q, k, v, exact) {
    heatReadout.replaceChildren();
    if (q === null) { for (const key of ['query', 'key', 'value']) delete heatReadout.dataset[key]; return; }
    heatReadout.dataset.query = String(q);
    heatReadout.dataset.key = String(k);
    if (exact) heatReadout.dataset.value = String(v); else delete heatReadout.dataset.value;
    heatReadout.textContent = `query ${tokenReadout(tokens, q, 14)} \u2192 key ${tokenReadout(tokens, k, 14)}: ${exact ? '' : '\u2264 '}${formatValue(v)}`;
  }

  return {
    cells: { title, prompt, readout, prefix: prefixBlock, tail: tailBlock, heat },
    shade, clearShade, markFocus, setReadout, drawHeat, indexOf, heatCanvas, heatReadoutText,
  };
}
