import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createState, defaultState, setViewFocus, sameSelection } from 'attnscope/state.js';

test('defaults, get and a shallow-merging set', () => {
  const s = createState({ layer: 2 });
  assert.equal(s.get().layer, 2);
  assert.equal(s.get().reading, 'producing');
  assert.equal(s.get().agg, 'none');
  assert.equal(s.get().scale, 'linear');
  assert.equal(s.get().focus, null);
  s.set({ head: 3 });
  assert.deepEqual({ layer: s.get().layer, head: s.get().head }, { layer: 2, head: 3 });
  assert.ok(Object.isFrozen(s.get()));
  assert.deepEqual(Object.keys(defaultState()).sort(), ['agg', 'focus', 'focuses', 'head', 'layer', 'reading', 'scale', 'selectedToken']);
  assert.throws(() => s.set(null), /invalid state patch/);
});

test('subscribers get (next, prev); unsubscribe stops them; no-op sets notify nobody', () => {
  const s = createState();
  const calls = [];
  const off = s.subscribe((next, prev) => calls.push([next.layer, prev.layer]));
  s.set({ layer: 1 });
  s.set({ layer: 1 }); // unchanged
  s.set({ layer: 4 });
  assert.deepEqual(calls, [[1, 0], [4, 1]]);
  assert.equal(off(), true);
  s.set({ layer: 5 });
  assert.equal(calls.length, 2);
  assert.throws(() => s.subscribe(42), /invalid subscriber/);
});

test('a subscriber may unsubscribe another during a notification', () => {
  const s = createState();
  const seen = [];
  let offB = null;
  s.subscribe(() => {
    seen.push('a');
    offB();
  });
  offB = s.subscribe(() => seen.push('b'));
  s.set({ head: 1 });
  assert.deepEqual(seen, ['a']);
});

test('each text view keeps its own focus; focus mirrors the last one changed', () => {
  const s = createState();
  setViewFocus(s, 'observer', { index: 3, frozen: true });
  setViewFocus(s, 'observed', { index: 7, frozen: false });
  assert.deepEqual(s.get().focuses, { observer: { index: 3, frozen: true }, observed: { index: 7, frozen: false } });
  assert.deepEqual(s.get().focus, { index: 7, view: 'observed', frozen: false });
  setViewFocus(s, 'observed', null);
  assert.deepEqual(s.get().focuses.observer, { index: 3, frozen: true }, 'the frozen observer is untouched');
  assert.deepEqual(s.get().focus, { index: 3, view: 'observer', frozen: true });
  setViewFocus(s, 'observer', null);
  assert.equal(s.get().focus, null);
  assert.throws(() => setViewFocus(s, 'matrix', null), /invalid view: matrix/);
});

test('sameSelection ignores what a selection does not use', () => {
  const a = { layer: 1, head: 2, agg: 'none' };
  assert.ok(sameSelection(a, { ...a }));
  assert.ok(!sameSelection(a, { ...a, head: 3 }));
  assert.ok(sameSelection({ ...a, agg: 'head-mean' }, { ...a, head: 0, agg: 'head-mean' }));
  assert.ok(!sameSelection({ ...a, agg: 'rollout' }, { ...a, layer: 0, agg: 'rollout' }));
  assert.ok(sameSelection({ ...a, agg: 'layer-mean' }, { layer: 0, head: 0, agg: 'layer-mean' }));
});
