// The text views. The run's text flows as tokens; hovering a token shades others:
// - observer: the earlier tokens, by the attention the hovered token paid to them
//   (one row: q0 = r, q1 = r + 1, k0 = 0, k1 = r + 1, r = the token's row);
// - observed: the later tokens, by the attention each paid to the hovered one
//   (one column: q0 = j, q1 = n_rows, k0 = j, k1 = j + 1).
// Double-click freezes a view on its token, another double-click releases it; arrow keys
// move the focus; a click selects the token for the flow view. The reading of generated
// tokens (state.reading) is applied by text_tokens.js (queryRow, observedWeights).
//
// Test hooks: .text-view[data-view=observer|observed]; every token element carries
// data-token-index; while a focus is active each shaded token carries data-weight (the
// float it displays, as a decimal string); the focused one has class "focus" (and
// "frozen" when frozen).

import { setViewFocus, sameSelection } from 'attnscope/state.js';
import { autoDomain, createScale, formatValue } from 'attnscope/color/scale.js';
import { createLegend } from 'attnscope/ui/legend.js';
import { READING_CHOICES } from 'attnscope/ui/controls.js';
import { tokenDisplay, tokenLabel, storedRow, observedWeights, observerWeights } from 'attnscope/views/text_tokens.js';

// Runs up to this many rows are read as one whole matrix per selection (≤ 1 MiB of
// float32); longer runs one row or column per hover.
const WHOLE_MATRIX_ROWS = 512;
const WHOLE_MATRIX_KEEP = 6;

// ---- reading rows and columns -----------------------------------------------------------

function selectionOf(s) {
  return { layer: s.layer, head: s.head, agg: s.agg };
}

function selectionKey(sel) {
  if (sel.agg === 'layer-mean') return 'layer-mean';
  return sel.agg === 'none' ? `${sel.layer}/${sel.head}` : `${sel.layer}/${sel.agg}`;
}

// row(sel, r) -> A[r, 0..r]; column(sel, j) -> A[j..n-1, j]; both Promise<Float32Array>.
export function createAttentionReader(source, runId, nRows) {
  const whole = new Map(); // selection key -> Promise<Float32Array (n, n)>
  function matrix(sel) {
    const key = selectionKey(sel);
    let p = whole.get(key);
    if (!p) {
      p = source.matrix(runId, { ...sel, q0: 0, q1: nRows, k0: 0, k1: nRows, stride: 1 }).then((m) => m.data);
      p.catch(() => whole.delete(key));
      whole.set(key, p);
      if (whole.size > WHOLE_MATRIX_KEEP) whole.delete(whole.keys().next().value);
    }
    return p;
  }
  const small = nRows <= WHOLE_MATRIX_ROWS;
  return {
    async row(sel, r, signal) {
      if (small) return (await matrix(sel)).subarray(r * nRows, r * nRows + r + 1);
      const m = await source.matrix(runId, { ...sel, q0: r, q1: r + 1, k0: 0, k1: r + 1, stride: 1, signal });
      return m.data;
    },
    async column(sel, j, signal) {
      if (small) {
        const data = await matrix(sel);
        const out = new Float32Array(nRows - j);
        for (let q = j; q < nRows; q++) out[q - j] = data[q * nRows + j];
        return out;
      }
      const m = await source.matrix(runId, { ...sel, q0: j, q1: nRows, k0: j, k1: j + 1, stride: 1, signal });
      return m.data;
    },
  };
}

// ---- token elements ---------------------------------------------------------------------

const PART_CLASS = { space: 'ws', tab: 'ws', newline: 'nl', control: 'ctl', byte: 'byte' };

// One token's element. Untrusted text only ever goes through textContent.
export function tokenElement(token, index) {
  const el = document.createElement('span');
  el.className = 'tok';
  el.dataset.tokenIndex = String(index);
  if (token.generated) el.classList.add('gen');
  const d = tokenDisplay(token);
  if (d.kind === 'special' || d.kind === 'empty') {
    el.classList.add(d.kind);
    const pill = document.createElement('span');
    pill.className = 'pill';
    pill.textContent = d.parts[0].text;
    el.appendChild(pill);
  } else {
    for (const p of d.parts) {
      if (p.kind === 'text') {
        el.appendChild(document.createTextNode(p.text));
        continue;
      }
      const s = document.createElement('span');
      s.className = PART_CLASS[p.kind];
      s.textContent = p.text;
      el.appendChild(s);
      if (p.kind === 'newline') el.appendChild(document.createElement('br'));
    }
  }
  return el;
}

// ---- one view ---------------------------------------------------------------------------

const VIEW_TEXT = {
  observer: {
    title: 'Observer — what a token looked at',
    help: 'Hover a token: earlier tokens are shaded by the attention it paid to them.',
  },
  observed: {
    title: 'Observed — who looked at a token',
    help: 'Hover a token: later tokens are shaded by the attention they paid to it.',
  },
};

function reading(value) {
  return READING_CHOICES.find((c) => c.value === value) || READING_CHOICES[0];
}

function selectionText(s) {
  if (s.agg === 'layer-mean') return 'mean over all layers';
  if (s.agg === 'none') return `layer ${s.layer}, head ${s.head}`;
  return `layer ${s.layer}, ${{ 'head-mean': 'mean over heads', 'head-max': 'max over heads', rollout: 'rollout' }[s.agg]}`;
}

export function mountTextView(container, { source, state, runId, manifest, reader }, view) {
  const tokens = manifest.tokens;
  const nRows = manifest.n_rows;
  reader = reader || createAttentionReader(source, runId, nRows);

  const root = document.createElement('section');
  root.className = 'text-view';
  root.dataset.view = view;
  const h = document.createElement('h2');
  h.textContent = VIEW_TEXT[view].title;
  const help = document.createElement('p');
  help.className = 'help';
  help.textContent = `${VIEW_TEXT[view].help} Double-click to freeze, double-click again to release; arrow keys move.`;
  const legendSlot = document.createElement('div');
  const readout = document.createElement('div');
  readout.className = 'readout';
  readout.setAttribute('aria-live', 'polite');
  const box = document.createElement('div');
  box.className = 'tokens';
  box.tabIndex = 0;
  box.setAttribute('role', 'application');
  box.setAttribute('aria-label', `${VIEW_TEXT[view].title}: tokens; use the arrow keys`);
  root.append(h, help, legendSlot, readout, box);
  container.appendChild(root);
  const legend = createLegend(legendSlot);

  const els = [];
  const frag = document.createDocumentFragment();
  tokens.forEach((t, i) => {
    if (t.generated && (i === 0 || !tokens[i - 1].generated)) {
      const mark = document.createElement('span');
      mark.className = 'gen-marker';
      mark.textContent = 'generated ▸';
      frag.appendChild(mark);
    }
    const el = tokenElement(t, i);
    els.push(el);
    frag.append(el, document.createElement('wbr'));
  });
  box.appendChild(frag);

  let shaded = [];
  let focusEl = null;
  let seq = 0;
  let controller = null;
  let hoverIndex = null;
  let last = null; // {index, weights: Map} of the shown focus

  function clearShading() {
    for (const el of shaded) {
      el.style.backgroundColor = '';
      el.style.color = '';
      el.classList.remove('shaded');
      delete el.dataset.weight;
    }
    shaded = [];
    box.classList.remove('has-focus');
  }

  function markFocus(f) {
    if (focusEl) focusEl.classList.remove('focus', 'frozen');
    focusEl = f ? els[f.index] : null;
    if (focusEl) {
      focusEl.classList.add('focus');
      focusEl.classList.toggle('frozen', !!f.frozen);
    }
    root.classList.toggle('is-frozen', !!(f && f.frozen));
  }

  function describeFocus(s, f) {
    const t = tokens[f.index];
    const row = storedRow(f.index, s.reading, !!t.generated, nRows);
    const bits = [`“${tokenLabel(t)}” #${f.index}`];
    if (t.generated) bits.push(`generated: ${reading(s.reading).phrase}`);
    if (view === 'observer' && row !== null) bits.push(`row ${row}`);
    if (f.frozen) bits.push('frozen');
    return bits.join(' · ');
  }

  function showReadout(s, f, extra) {
    readout.replaceChildren();
    if (!f) {
      readout.textContent = 'Hover a token.';
      return;
    }
    const head = document.createElement('span');
    head.className = 'readout-focus';
    head.textContent = describeFocus(s, f);
    readout.appendChild(head);
    if (extra) {
      const e = document.createElement('span');
      e.className = 'readout-detail';
      e.textContent = extra;
      readout.append(' — ', e);
    }
  }

  function topText(weights) {
    const top = [...weights].sort((a, b) => b[1] - a[1]).slice(0, 3);
    const verb = view === 'observer' ? 'looked most at' : 'most looked at by';
    return `${verb} ${top.map(([i, w]) => `“${tokenLabel(tokens[i])}” #${i} ${formatValue(w)}`).join(', ')}`;
  }

  function hoverText() {
    if (hoverIndex === null || !last || hoverIndex === last.index) return null;
    const w = last.weights.get(hoverIndex);
    const label = `“${tokenLabel(tokens[hoverIndex])}” #${hoverIndex}`;
    return w === undefined ? `${label}: not shaded` : `${label}: ${formatValue(w)}`;
  }

  async function refresh() {
    const s = state.get();
    const f = s.focuses[view];
    const my = ++seq;
    if (controller) controller.abort();
    controller = null;
    markFocus(f);
    const readingNote = `Generated tokens: ${reading(s.reading).phrase}.`;
    if (!f) {
      clearShading();
      last = null;
      legend.clear(`${selectionText(s)}. ${readingNote}`);
      showReadout(s, null);
      return;
    }
    const sel = selectionOf(s);
    const t = tokens[f.index];
    let request;
    if (view === 'observer') {
      const r = storedRow(f.index, s.reading, !!t.generated, nRows);
      if (r === null) request = null;
      else request = (signal) => reader.row(sel, r, signal).then(observerWeights);
    } else {
      request = f.index < nRows ? (signal) => reader.column(sel, f.index, signal).then((col) => observedWeights(f.index, col, tokens, s.reading, nRows)) : null;
    }
    if (!request) {
      clearShading();
      last = null;
      box.classList.add('has-focus');
      legend.clear(`${selectionText(s)}. ${readingNote}`);
      showReadout(s, f, 'no attention stored for this position');
      return;
    }
    controller = typeof AbortController === 'function' ? new AbortController() : null;
    let weights;
    try {
      weights = await request(controller && controller.signal);
    } catch (e) {
      if (my !== seq || (e && e.name === 'AbortError')) return;
      clearShading();
      last = null;
      legend.clear('');
      showReadout(s, f, `error: ${e.message}`);
      return;
    }
    if (my !== seq) return; // superseded
    paint(s, f, weights, readingNote);
  }

  function paint(s, f, weights, readingNote) {
    clearShading();
    const domain = autoDomain(weights.map((x) => x[1]), s.scale);
    const scale = createScale({ type: s.scale, min: domain.min, max: domain.max, palette: 'blues' });
    box.classList.add('has-focus');
    for (const [i, w] of weights) {
      const el = els[i];
      el.style.backgroundColor = scale.css(w);
      el.style.color = scale.ink(w);
      el.dataset.weight = String(w);
      el.classList.add('shaded');
      shaded.push(el);
    }
    last = { index: f.index, weights: new Map(weights) };
    const what = view === 'observer' ? `attention paid by #${f.index}` : `attention paid to #${f.index}`;
    legend.update(scale, `${what} · ${selectionText(s)} · ${readingNote}`);
    showReadout(s, f, hoverText() || (weights.length ? topText(weights) : 'nothing to shade'));
  }

  // ---- interaction ----
  const indexOf = (target) => {
    const el = target && target.closest ? target.closest('[data-token-index]') : null;
    return el && box.contains(el) ? Number(el.dataset.tokenIndex) : null;
  };
  const focusOf = () => state.get().focuses[view];
  const setFocus = (f) => setViewFocus(state, view, f);

  function onOver(e) {
    const i = indexOf(e.target);
    if (i === null) return;
    hoverIndex = i;
    const f = focusOf();
    if (f && f.frozen) {
      showReadout(state.get(), f, hoverText() || (last ? topText([...last.weights]) : ''));
      return;
    }
    setFocus({ index: i, frozen: false });
  }
  function onLeave() {
    hoverIndex = null;
    const f = focusOf();
    if (f && !f.frozen) setFocus(null);
  }
  function onDblClick(e) {
    const i = indexOf(e.target);
    if (i === null) return;
    const f = focusOf();
    setFocus({ index: i, frozen: !(f && f.frozen) });
  }
  function onMouseDown(e) {
    if (e.detail > 1) e.preventDefault(); // no word selection on double-click
  }
  function onClick(e) {
    const i = indexOf(e.target);
    if (i !== null) state.set({ selectedToken: i });
  }

  function lineNeighbour(from, dir) {
    const cur = els[from].getBoundingClientRect();
    const cx = (cur.left + cur.right) / 2;
    let best = null;
    let lineTop = null;
    for (let i = from + dir; i >= 0 && i < els.length; i += dir) {
      const r = els[i].getBoundingClientRect();
      const otherLine = dir < 0 ? r.bottom <= cur.top + 1 : r.top >= cur.bottom - 1;
      if (!otherLine) continue;
      if (lineTop === null) lineTop = r.top;
      else if (Math.abs(r.top - lineTop) > 2) break;
      const d = Math.abs((r.left + r.right) / 2 - cx);
      if (!best || d < best.d) best = { i, d };
    }
    return best ? best.i : from;
  }

  function onKey(e) {
    const f = focusOf();
    const n = els.length;
    if (!n) return;
    const at = f ? f.index : hoverIndex !== null ? hoverIndex : -1;
    let next = null;
    switch (e.key) {
      case 'ArrowRight': next = Math.min(n - 1, at + 1); break;
      case 'ArrowLeft': next = at < 0 ? 0 : Math.max(0, at - 1); break;
      case 'ArrowDown': next = at < 0 ? 0 : lineNeighbour(at, 1); break;
      case 'ArrowUp': next = at < 0 ? 0 : lineNeighbour(at, -1); break;
      case 'Home': next = 0; break;
      case 'End': next = n - 1; break;
      case 'Enter':
      case ' ':
        if (f) setFocus({ index: f.index, frozen: !f.frozen });
        e.preventDefault();
        return;
      case 'Escape':
        setFocus(null);
        return;
      default:
        return;
    }
    e.preventDefault();
    setFocus({ index: next, frozen: !!(f && f.frozen) });
    els[next].scrollIntoView({ block: 'nearest', inline: 'nearest' });
  }

  box.addEventListener('pointerover', onOver);
  box.addEventListener('pointerleave', onLeave);
  box.addEventListener('dblclick', onDblClick);
  box.addEventListener('mousedown', onMouseDown);
  box.addEventListener('click', onClick);
  box.addEventListener('keydown', onKey);

  const unsubscribe = state.subscribe((s, prev) => {
    const changed =
      s.focuses[view] !== prev.focuses[view] || !sameSelection(s, prev) || s.scale !== prev.scale || s.reading !== prev.reading;
    if (changed) refresh();
  });
  refresh();

  return {
    element: root,
    destroy() {
      unsubscribe();
      seq++;
      if (controller) controller.abort();
      legend.destroy();
      root.remove();
    },
  };
}

// ---- both views -------------------------------------------------------------------------

const LAYOUTS = [
  { value: 'both', label: 'Both' },
  { value: 'observer', label: 'Observer' },
  { value: 'observed', label: 'Observed' },
];

// mountText(container, ctx) -> {destroy()}: the observer and observed views, side by
// side (stacked on narrow screens), with a switch to show one of them.
export function mountText(container, ctx) {
  const root = document.createElement('div');
  root.className = 'text-views';
  root.dataset.layout = 'both';
  const bar = document.createElement('div');
  bar.className = 'text-layout';
  bar.setAttribute('role', 'group');
  bar.setAttribute('aria-label', 'Text views shown');
  for (const l of LAYOUTS) {
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.layout = l.value;
    b.textContent = l.label;
    b.setAttribute('aria-pressed', String(l.value === 'both'));
    b.addEventListener('click', () => {
      root.dataset.layout = l.value;
      for (const x of bar.children) x.setAttribute('aria-pressed', String(x === b));
    });
    bar.appendChild(b);
  }
  const panes = document.createElement('div');
  panes.className = 'text-panes';
  root.append(bar, panes);
  container.appendChild(root);
  const reader = createAttentionReader(ctx.source, ctx.runId, ctx.manifest.n_rows);
  const views = ['observer', 'observed'].map((v) => mountTextView(panes, { ...ctx, reader }, v));
  return {
    destroy() {
      for (const v of views) v.destroy();
      root.remove();
    },
  };
}
