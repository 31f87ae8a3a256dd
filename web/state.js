// The shared selection state of one page: what is selected (layer, head, aggregate),
// how it is coloured (scale), how generated tokens are read (reading) and which token
// each text view is focused on.
//
//   const state = createState({ layer: 2 });
//   state.get()            // the current state object (treat as read-only)
//   state.set(patch)       // shallow-merge, then notify subscribers with (next, prev)
//   state.subscribe(fn)    // returns an unsubscribe function
//
// Fields (see web/README.md):
//   layer, head      ints
//   agg              "none" | "head-mean" | "head-max" | "layer-mean" | "rollout"
//   scale            "linear" | "log"
//   reading          "producing" (default: a generated token is read at the row of the
//                    position before it, the attention while producing it) | "own"
//   focus            {index, view, frozen} | null — the focus of the text view that
//                    changed last (view: "observer" | "observed"), for other views
//   focuses          {observer: {index, frozen} | null, observed: ... } — each text
//                    view's own focus; the two freeze independently
//   selectedToken    int | null (the flow view's token; a click in a text view sets it)

export const AGGREGATES = ['none', 'head-mean', 'head-max', 'layer-mean', 'rollout'];
export const SCALES = ['linear', 'log'];
export const READINGS = ['producing', 'own'];
export const TEXT_VIEWS = ['observer', 'observed'];

export function defaultState() {
  return {
    layer: 0,
    head: 0,
    agg: 'none',
    scale: 'linear',
    reading: 'producing',
    focus: null,
    focuses: { observer: null, observed: null },
    selectedToken: null,
  };
}

export function createState(initial = {}) {
  let current = Object.freeze({ ...defaultState(), ...initial });
  const subscribers = new Set();
  return {
    get() {
      return current;
    },
    set(patch) {
      if (patch === null || typeof patch !== 'object') throw new TypeError(`invalid state patch: ${patch}`);
      const prev = current;
      let changed = false;
      for (const key of Object.keys(patch)) {
        if (!Object.is(prev[key], patch[key])) changed = true;
      }
      if (!changed) return;
      current = Object.freeze({ ...prev, ...patch });
      // A subscriber may unsubscribe (itself or another) while we notify: iterate a copy.
      for (const fn of [...subscribers]) {
        if (subscribers.has(fn)) fn(current, prev);
      }
    },
    subscribe(fn) {
      if (typeof fn !== 'function') throw new TypeError(`invalid subscriber: ${fn}`);
      subscribers.add(fn);
      return () => subscribers.delete(fn);
    },
  };
}

// Sets one text view's focus (null clears it) and mirrors it into `focus`.
export function setViewFocus(state, view, focus) {
  if (!TEXT_VIEWS.includes(view)) throw new TypeError(`invalid view: ${view}`);
  const s = state.get();
  const old = s.focuses[view];
  if (old === focus || (old && focus && old.index === focus.index && old.frozen === focus.frozen)) return;
  const focuses = { ...s.focuses, [view]: focus ? { index: focus.index, frozen: !!focus.frozen } : null };
  let mirrored = s.focus;
  if (focus) mirrored = { index: focus.index, view, frozen: !!focus.frozen };
  else if (s.focus && s.focus.view === view) {
    const other = TEXT_VIEWS.find((v) => v !== view);
    mirrored = focuses[other] ? { ...focuses[other], view: other } : null;
  }
  state.set({ focuses, focus: mirrored });
}

// True when the two selections read the same attention matrix.
export function sameSelection(a, b) {
  if (a.agg !== b.agg) return false;
  if (a.agg === 'layer-mean') return true;
  if (a.layer !== b.layer) return false;
  return a.agg !== 'none' || a.head === b.head;
}
