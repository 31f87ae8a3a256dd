// The model grid: one thumbnail per (layer, head), layers down and heads across (bertviz's
// model view), from the downsampled source.grid(). A click selects that head
// (state {layer, head, agg: "none"}), so every view follows; the selected one is outlined.
//
// Test hooks: each thumbnail (a button) carries data-layer / data-head; the selected one
// has aria-pressed="true" and the class "selected".

import { createScale } from 'attnscope/color/scale.js';
import { thumbSize, thumbBytes, byteColors, paintThumb } from 'attnscope/views/grid_layout.js';

const REQUEST_SIZE = 64;

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v; else if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function colorsFor(type) {
  // Thumbnail bytes are value / max · 255: the scale runs over (0, 1], log from one step.
  return byteColors(createScale(type === 'log' ? { type, min: 1 / 255, max: 1 } : { type, min: 0, max: 1 }));
}

export function mountGrid(container, ctx) {
  const { source, state, runId, manifest } = ctx;
  const shape = manifest.attention || manifest.model || {};

  const status = el('p', { class: 'grid-status', 'aria-live': 'polite', text: 'loading thumbnails\u2026' });
  const note = el('p', { class: 'grid-note', text: 'Every head of every layer (each thumbnail scaled to its own maximum). Click one to select it.' });
  note.style.cssText = 'margin:2px 0 6px;color:#666;font-size:12px';
  const table = el('div', { class: 'grid-table', role: 'group', 'aria-label': 'Layers \u00d7 heads' });
  const root = el('section', { class: 'attnscope-grid' }, note, status, table);
  container.append(root);

  let grid = null;
  let thumbs = [];               // thumbs[layer][head] = {button, canvas}
  let rowLabels = [];
  let colors = colorsFor(state.get().scale);
  let size = 48;
  let destroyed = false;

  function cssSize() {
    const width = root.clientWidth || container.clientWidth || 600;
    return thumbSize(grid.n_heads, width, { labelWidth: 56, gap: 4 });
  }

  function layout() {
    if (!grid) return;
    size = cssSize();
    table.style.display = 'grid';
    table.style.gridTemplateColumns = `56px repeat(${grid.n_heads}, ${size}px)`;
    table.style.gap = '4px';
    table.style.alignItems = 'center';
    for (const row of thumbs) for (const t of row) {
      t.canvas.style.width = `${size}px`;
      t.canvas.style.height = `${size}px`;
    }
  }

  function paint(layer, head) {
    const t = thumbs[layer][head];
    const g = t.canvas.getContext('2d');
    const img = g.createImageData(grid.size, grid.size);
    paintThumb(thumbBytes(grid, layer, head), colors, img.data);
    g.putImageData(img, 0, 0);
  }

  function paintAll() {
    for (let l = 0; l < grid.n_layers; l++) for (let h = 0; h < grid.n_heads; h++) paint(l, h);
  }

  function markSelected() {
    const s = state.get();
    for (let l = 0; l < thumbs.length; l++) {
      const rowActive = s.agg !== 'layer-mean' && s.layer === l;
      rowLabels[l].style.fontWeight = rowActive ? '700' : '400';
      for (let h = 0; h < thumbs[l].length; h++) {
        const on = s.agg === 'none' && s.layer === l && s.head === h;
        const b = thumbs[l][h].button;
        b.classList.toggle('selected', on);
        b.setAttribute('aria-pressed', on ? 'true' : 'false');
        b.tabIndex = on || (s.agg !== 'none' && l === s.layer && h === 0) ? 0 : -1;
        b.style.outline = on ? '3px solid #e6550d' : rowActive && s.agg !== 'none' ? '1px dashed #e6550d' : 'none';
        b.style.outlineOffset = '1px';
      }
    }
    if (!thumbs.some((row) => row.some((t) => t.button.tabIndex === 0)) && thumbs[0] && thumbs[0][0]) thumbs[0][0].button.tabIndex = 0;
  }

  function select(layer, head) {
    state.set({ layer, head, agg: 'none' });
  }

  function onKey(ev) {
    const b = ev.target.closest('button[data-layer]');
    if (!b) return;
    let l = Number(b.dataset.layer), h = Number(b.dataset.head);
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    const m = moves[ev.key];
    if (!m) return;
    ev.preventDefault();
    l = Math.min(Math.max(l + m[0], 0), grid.n_layers - 1);
    h = Math.min(Math.max(h + m[1], 0), grid.n_heads - 1);
    thumbs[l][h].button.focus();
  }

  function build() {
    table.replaceChildren();
    thumbs = []; rowLabels = [];
    table.append(el('span', { class: 'grid-corner', text: '' }));
    for (let h = 0; h < grid.n_heads; h++) {
      const lab = el('span', { class: 'grid-head-label', text: `H${h}` });
      lab.style.cssText = 'text-align:center;font-size:11px;color:#555';
      table.append(lab);
    }
    for (let l = 0; l < grid.n_layers; l++) {
      const lab = el('span', { class: 'grid-layer-label', text: `Layer ${l}` });
      lab.style.cssText = 'font-size:12px;color:#333;white-space:nowrap';
      table.append(lab);
      rowLabels.push(lab);
      const row = [];
      for (let h = 0; h < grid.n_heads; h++) {
        const canvas = el('canvas', { width: String(grid.size), height: String(grid.size), 'aria-hidden': 'true' });
        canvas.style.imageRendering = 'pixelated';
        canvas.style.display = 'block';
        const button = el('button', {
          type: 'button', class: 'grid-thumb', 'data-layer': String(l), 'data-head': String(h),
          title: `Layer ${l}, head ${h}`, 'aria-label': `Layer ${l}, head ${h}`, 'aria-pressed': 'false',
        }, canvas);
        button.style.cssText = 'padding:0;border:1px solid #ccc;background:#fff;cursor:pointer;line-height:0';
        button.addEventListener('click', () => select(l, h));
        table.append(button);
        row.push({ button, canvas });
      }
      thumbs.push(row);
    }
    layout();
    paintAll();
    markSelected();
  }

  table.addEventListener('keydown', onKey);

  const unsubscribe = state.subscribe((next, prev) => {
    if (!grid) return;
    if (next.scale !== prev.scale) { colors = colorsFor(next.scale); paintAll(); }
    if (next.layer !== prev.layer || next.head !== prev.head || next.agg !== prev.agg) markSelected();
  });

  const ro = typeof ResizeObserver === 'function' ? new ResizeObserver(() => { if (grid && cssSize() !== size) layout(); }) : null;
  if (ro) ro.observe(root);

  source.grid(runId, REQUEST_SIZE).then((g) => {
    if (destroyed) return;
    if (!(g.n_layers > 0 && g.n_heads > 0 && g.size > 0)) throw new Error(`invalid grid: ${g.n_layers} layers × ${g.n_heads} heads × ${g.size}`);
    if (shape.n_layers && (g.n_layers !== shape.n_layers || g.n_heads !== shape.n_heads)) {
      throw new Error(`grid is ${g.n_layers} × ${g.n_heads}, the run has ${shape.n_layers} layers × ${shape.n_heads} heads`);
    }
    grid = g;
    status.textContent = '';
    status.hidden = true;
    build();
  }).catch((err) => {
    if (destroyed) return;
    status.textContent = `could not load the thumbnails: ${err && err.message ? err.message : err}`;
  });

  return {
    destroy() {
      destroyed = true;
      unsubscribe();
      if (ro) ro.disconnect();
      root.remove();
    },
  };
}
