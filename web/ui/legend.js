// The colour legend: a caption, the palette ramp (drawn from the scale's LUT) and its
// numeric ticks. Test hooks: the root carries data-min / data-max (the domain, as decimal
// strings) and data-scale ("linear" | "log"); it is hidden while there is no domain.
//
//   const legend = createLegend(container);
//   legend.update(scale, 'caption text');   // scale from color/scale.js createScale()
//   legend.clear('hover a token');
//   legend.destroy();

import { formatValue } from 'attnscope/color/scale.js';

// Tick values, labels and positions (0..1 along the bar) for a legend `widthPx` wide.
// Both ends are always labelled (the start label is left-aligned, the end label
// right-aligned); an inner tick is kept only where its centred label clears its kept
// neighbours by `gapPx`. `labelPx(label)` estimates a label's drawn width (createLegend then
// drops any label that still collides once drawn); the default is 7.5 px per character.
export function legendTicks(scale, { count = 5, widthPx = 300, gapPx = 8, labelPx = (label) => label.length * 7.5 } = {}) {
  const tick = (value) => ({ value, label: formatValue(value), position: scale.position(value) });
  const width = (t) => labelPx(t.label) / widthPx;
  const gap = gapPx / widthPx;
  const start = tick(scale.min);
  const end = tick(scale.max);
  const kept = [start];
  let right = width(start);  // right edge of the last kept label
  const endLeft = 1 - width(end);
  for (const value of scale.ticks(count)) {
    const t = tick(value);
    const half = width(t) / 2;
    if (t.position - half >= right + gap && t.position + half <= endLeft - gap) {
      kept.push(t);
      right = t.position + half;
    }
  }
  kept.push(end);
  return kept;
}

// The estimate in legendTicks cannot know the font: once drawn, drop every inner label
// that does not clear its kept neighbours by 6 px (the end labels always stay).
function removeCollidingTicks(els, gapPx = 6) {
  if (els.length < 3) return;
  const rects = els.map((el) => el.getBoundingClientRect());
  const endLeft = rects[rects.length - 1].left;
  let right = rects[0].right;
  for (let i = 1; i < els.length - 1; i++) {
    if (rects[i].left >= right + gapPx && rects[i].right <= endLeft - gapPx) {
      right = rects[i].right;
    } else {
      els[i].remove();
    }
  }
}

export function createLegend(container) {
  const root = document.createElement('div');
  root.className = 'legend';
  const caption = document.createElement('div');
  caption.className = 'legend-caption';
  const ramp = document.createElement('canvas');
  ramp.className = 'legend-ramp';
  ramp.width = 256;
  ramp.height = 1;
  ramp.setAttribute('aria-hidden', 'true');
  const ticks = document.createElement('div');
  ticks.className = 'legend-ticks';
  const bar = document.createElement('div');
  bar.className = 'legend-bar';
  bar.append(ramp, ticks);
  const kind = document.createElement('span');
  kind.className = 'legend-kind';
  const row = document.createElement('div');
  row.className = 'legend-row';
  row.append(bar, kind);
  root.append(caption, row);
  container.appendChild(root);
  let lastLut = null;

  function clear(message = '') {
    caption.textContent = message;
    root.classList.add('legend-empty');
    root.removeAttribute('data-min');
    root.removeAttribute('data-max');
    root.removeAttribute('data-scale');
    ticks.replaceChildren();
    kind.textContent = '';
  }

  function update(scale, text = '') {
    caption.textContent = text;
    root.classList.remove('legend-empty');
    root.dataset.min = String(scale.min);
    root.dataset.max = String(scale.max);
    root.dataset.scale = scale.type;
    if (lastLut !== scale.lut) {
      const ctx = ramp.getContext('2d');
      const img = ctx.createImageData(256, 1);
      img.data.set(scale.lut);
      ctx.putImageData(img, 0, 0);
      lastLut = scale.lut;
    }
    const els = legendTicks(scale, { widthPx: ticks.clientWidth || 300 }).map(({ label, position }, i, all) => {
      const el = document.createElement('span');
      el.className = 'legend-tick';
      if (i === 0) el.classList.add('legend-tick-start');
      if (i === all.length - 1) el.classList.add('legend-tick-end');
      el.style.left = `${(position * 100).toFixed(2)}%`;
      el.textContent = label;
      return el;
    });
    kind.textContent = scale.type === 'log' ? 'log scale' : 'linear scale';
    ticks.replaceChildren(...els);
    removeCollidingTicks(els);
  }

  clear();
  return {
    element: root,
    update,
    clear,
    destroy() {
      root.remove();
    },
  };
}
