// The colour legend: a caption, the palette ramp (drawn from the scale's LUT) and its
// numeric ticks. Test hooks: the root carries data-min / data-max (the domain, as decimal
// strings) and data-scale ("linear" | "log"); it is hidden while there is no domain.
//
//   const legend = createLegend(container);
//   legend.update(scale, 'caption text');   // scale from color/scale.js createScale()
//   legend.clear('hover a token');
//   legend.destroy();

import { formatValue } from 'attnscope/color/scale.js';

// Ticks to draw: the scale's ticks plus both ends, as {value, label, position in [0, 1]}.
// Ticks closer than `minGap` to an end are dropped so labels do not collide.
export function legendTicks(scale, count = 5, minGap = 0.14) {
  const ends = [scale.min, scale.max];
  const inner = scale.ticks(count).filter((v) => {
    const p = scale.position(v);
    return p > minGap && p < 1 - minGap;
  });
  return [ends[0], ...inner, ends[1]].map((value) => ({ value, label: formatValue(value), position: scale.position(value) }));
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
    const els = legendTicks(scale).map(({ label, position }, i, all) => {
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
