// The selectors of the header: layer, head (or an aggregate over heads / layers),
// colour scale and the reading of generated tokens. They write the shared state and
// follow it (another view may change it too).
//
// Stable hooks: select[name=layer], select[name=head] (values "0".."H-1", "head-mean",
// "head-max", "layer-mean", "rollout"), input[name=scale] (linear | log),
// input[name=reading] (producing | own).

export const HEAD_CHOICES = [
  { value: 'head-mean', label: 'Mean over heads', title: 'The average of all heads of the layer' },
  { value: 'head-max', label: 'Max over heads', title: 'The strongest attention any single head of the layer gives' },
  { value: 'layer-mean', label: 'Mean over all layers', title: 'The average of every head of every layer (the layer choice is ignored)' },
  { value: 'rollout', label: 'Rollout through this layer', title: 'Attention followed through the residual stream from the first layer to this one (Abnar & Zuidema, 2020)' },
];

export const READING_CHOICES = [
  { value: 'producing', label: 'while producing it', phrase: 'attention while producing the token', title: 'For a generated token: the attention of the position before it, when the model chose this token (att_viz\'s reading)' },
  { value: 'own', label: 'at its own position', phrase: 'attention at the token\'s own position', title: 'For a generated token: the attention of its own position, when the model was choosing the next token' },
];

// The head <select> value for a state, and back.
export function headValue(s) {
  return s.agg === 'none' ? String(s.head) : s.agg;
}

export function parseHeadValue(value) {
  if (/^\d+$/.test(value)) return { agg: 'none', head: Number(value) };
  if (HEAD_CHOICES.some((c) => c.value === value)) return { agg: value };
  throw new Error(`invalid head: ${value}`);
}

function el(tag, props = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'text') e.textContent = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

function radioGroup(name, legend, choices, groupTitle) {
  const fieldset = el('fieldset', { class: `control control-${name}`, title: groupTitle }, [el('legend', { text: legend })]);
  for (const c of choices) {
    const input = el('input', { type: 'radio', name, value: c.value, id: `ctl-${name}-${c.value}` });
    fieldset.append(el('label', { for: input.id, title: c.title || '' }, [input, ' ', c.label]));
  }
  return fieldset;
}

// mountControls(container, {state, manifest}) -> {destroy()}
export function mountControls(container, { state, manifest }) {
  const shape = manifest.attention || manifest.model;
  const root = el('div', { class: 'controls' });

  const layer = el('select', { name: 'layer', id: 'ctl-layer' });
  for (let l = 0; l < shape.n_layers; l++) layer.append(el('option', { value: String(l), text: `Layer ${l}` }));
  const head = el('select', { name: 'head', id: 'ctl-head' });
  const heads = el('optgroup', { label: 'One head' });
  for (let h = 0; h < shape.n_heads; h++) heads.append(el('option', { value: String(h), text: `Head ${h}` }));
  const aggs = el('optgroup', { label: 'Combined' });
  for (const c of HEAD_CHOICES) aggs.append(el('option', { value: c.value, text: c.label, title: c.title }));
  head.append(heads, aggs);

  root.append(
    el('label', { class: 'control', for: 'ctl-layer', title: `Layers 0–${shape.n_layers - 1}, from the input side to the output side` }, ['Layer ', layer]),
    el('label', { class: 'control', for: 'ctl-head', title: 'One attention head, or a combination of heads or layers' }, ['Head ', head]),
    radioGroup('scale', 'Colour', [
      { value: 'linear', label: 'linear', title: 'Colour proportional to the weight' },
      { value: 'log', label: 'log', title: 'Logarithmic colour: small weights become visible' },
    ], 'How weights map to colour'),
    radioGroup('reading', 'Generated tokens: attention', READING_CHOICES, 'Which attention row stands for a generated token'),
  );
  container.appendChild(root);

  layer.addEventListener('change', () => state.set({ layer: Number(layer.value) }));
  head.addEventListener('change', () => state.set(parseHeadValue(head.value)));
  root.addEventListener('change', (e) => {
    const t = e.target;
    if (t.name === 'scale' && t.checked) state.set({ scale: t.value });
    if (t.name === 'reading' && t.checked) state.set({ reading: t.value });
  });

  const hasGenerated = manifest.tokens.some((t) => t.generated);
  function sync(s) {
    layer.value = String(s.layer);
    layer.disabled = s.agg === 'layer-mean';
    head.value = headValue(s);
    for (const input of root.querySelectorAll('input[name=scale]')) input.checked = input.value === s.scale;
    for (const input of root.querySelectorAll('input[name=reading]')) {
      input.checked = input.value === s.reading;
      input.disabled = !hasGenerated;
    }
  }
  sync(state.get());
  const unsubscribe = state.subscribe((s) => sync(s));
  return {
    destroy() {
      unsubscribe();
      root.remove();
    },
  };
}
