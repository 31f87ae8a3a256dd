// Entry: window.ATTNSCOPE_CONFIG -> data source -> shared state -> views.
// The text views, the controls and the run list are part of this module's set; the
// matrix, grid, flow and compare views are imported on first display and replaced by a
// note when they are missing from the build.

import { createSource } from 'attnscope/data/source.js';
import { createState } from 'attnscope/state.js';
import { mountControls } from 'attnscope/ui/controls.js';
import { mountText } from 'attnscope/views/text.js';
import { mountRuns } from 'attnscope/ui/runs.js';

const TABS = ['text', 'matrix', 'grid', 'flow', 'compare', 'runs'];
const EXTERNAL = {
  matrix: ['attnscope/views/matrix.js', 'mountMatrix', 'matrix'],
  grid: ['attnscope/views/grid.js', 'mountGrid', 'layers × heads'],
  flow: ['attnscope/views/flow.js', 'mountFlow', 'flow'],
  compare: ['attnscope/views/compare.js', 'mountCompare', 'compare'],
};

const $ = (id) => document.getElementById(id);

function showError(message) {
  const banner = $('error');
  banner.textContent = message;
  banner.hidden = !message;
}

// The stylesheet, when the page did not get it (the server links /static/style.css and
// render inlines it): loaded through the import map (attnscope/style.css).
function ensureStylesheet() {
  if (getComputedStyle(document.documentElement).getPropertyValue('--attnscope-css').trim()) return;
  try {
    const href = import.meta.resolve('attnscope/style.css');
    const link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = href;
    document.head.appendChild(link);
  } catch {
    // no mapping: the page stays unstyled but usable
  }
}

function readConfig() {
  const config = { mode: 'http', runs: [], compare: false, captureEnabled: false, ...(window.ATTNSCOPE_CONFIG || {}) };
  if (config.mode === 'http' && !config.runs.length) {
    // The server fills runs from ?run=<id>[&run=<id>&compare=1]; a page without a
    // server-side config (a plain static file server) reads the address itself.
    const q = new URLSearchParams(location.search);
    const ids = q.getAll('run').slice(0, 2);
    config.runs = ids;
    config.compare = ids.length === 2 && q.get('compare') === '1';
  }
  return config;
}

function createApp(config) {
  const source = createSource(config);
  const mounted = new Map(); // tab -> {destroy()} | Promise
  let current = null; // {ctx, ctxs, controls}
  let active = null;

  const tabButtons = Object.fromEntries(TABS.map((t) => [t, document.querySelector(`[data-tab="${t}"]`)]));
  const panels = Object.fromEntries(TABS.map((t) => [t, document.querySelector(`[data-panel="${t}"]`)]));

  function available(tab) {
    return !tabButtons[tab].hidden;
  }

  function setTabs(list) {
    for (const t of TABS) tabButtons[t].hidden = !list.includes(t);
  }

  function show(tab) {
    if (!available(tab)) tab = TABS.find(available);
    active = tab;
    for (const t of TABS) {
      panels[t].hidden = t !== tab;
      tabButtons[t].setAttribute('aria-selected', String(t === tab));
      tabButtons[t].tabIndex = t === tab ? 0 : -1;
    }
    if (location.hash.slice(1) !== tab) history.replaceState(null, '', `#${tab}`);
    mountTab(tab);
  }

  async function mountExternal(tab, arg) {
    const [spec, name, label] = EXTERNAL[tab];
    const panel = panels[tab];
    try {
      const mod = await import(spec);
      if (typeof mod[name] !== 'function') throw new Error(`${spec} has no ${name}()`);
      return mod[name](panel, arg);
    } catch (e) {
      console.warn(`attnscope: the ${label} view is not available: ${e.message}`);
      const note = document.createElement('p');
      note.className = 'placeholder';
      note.textContent = `The ${label} view is not available in this build.`;
      panel.replaceChildren(note);
      return { destroy: () => note.remove() };
    }
  }

  function mountTab(tab) {
    if (mounted.has(tab)) return;
    if (tab === 'runs') {
      mounted.set(tab, mountRuns(panels.runs, { source, config, openRun, openCompare }));
      return;
    }
    if (!current) return;
    if (tab === 'text') {
      mounted.set(tab, mountText(panels.text, current.ctx));
      return;
    }
    const arg = tab === 'compare' ? current.ctxs : current.ctx;
    const pending = mountExternal(tab, arg);
    mounted.set(tab, pending);
    pending.then((view) => {
      if (mounted.get(tab) === pending) mounted.set(tab, view);
      else if (view && view.destroy) view.destroy(); // the run changed meanwhile
    }, (e) => showError(e.message));
  }

  function unmountRunViews() {
    for (const [tab, view] of mounted) {
      if (tab === 'runs') continue;
      mounted.delete(tab);
      if (view && typeof view.destroy === 'function') view.destroy();
      panels[tab].replaceChildren();
    }
    if (current && current.controls) current.controls.destroy();
    current = null;
  }

  function setHeader(manifests, ids) {
    const m = manifests[0];
    const model = (m.model && (m.model.name || m.model.file_name)) || 'model';
    const prompt = String(m.prompt || '').replace(/\s+/g, ' ');
    const short = prompt.length > 60 ? `${prompt.slice(0, 59)}…` : prompt;
    $('run-title').textContent = ids.length > 1 ? `${ids[0]} vs ${ids[1]}` : `“${short}”`;
    const shape = m.attention || m.model;
    const generated = m.tokens.filter((t) => t.generated).length;
    const bits = [
      model,
      `${m.tokens.length - generated} prompt + ${generated} generated tokens`,
      `${shape.n_layers} layers × ${shape.n_heads} heads`,
    ];
    if (!m.complete) bits.push(`incomplete: ${m.n_rows} positions stored`);
    $('run-meta').textContent = bits.join(' · ');
    document.title = `attnscope — ${short || ids[0]}`;
  }

  let openSeq = 0;  // a newer open() supersedes one still waiting for its manifests
  async function open(ids, compare) {
    const seq = ++openSeq;
    unmountRunViews();
    showError('');
    $('loading').hidden = false;
    let manifests;
    try {
      manifests = await Promise.all(ids.map((id) => source.manifest(id)));
    } catch (e) {
      if (seq !== openSeq) return;
      $('loading').hidden = true;
      showError(`Could not open ${ids.join(', ')}: ${e.message}`);
      return;
    }
    if (seq !== openSeq) return;
    unmountRunViews();
    $('loading').hidden = true;
    const state = createState({});
    const ctxs = ids.map((runId, i) => ({ source, state, runId, manifest: manifests[i] }));
    const controls = mountControls($('controls'), { state, manifest: manifests[0] });
    current = { ctx: ctxs[0], ctxs, controls, state };
    setHeader(manifests, ids);
    const tabs = ['text', 'matrix', 'grid', 'flow'];
    if (compare) tabs.unshift('compare');
    if (config.mode === 'http') tabs.push('runs');
    setTabs(tabs);
    const wanted = location.hash.slice(1);
    show(tabs.includes(wanted) ? wanted : tabs[0]);
    window.attnscope = { state, source, config, runs: ids }; // for the console and tests
  }

  function openRun(id) {
    if (config.mode === 'http') history.pushState(null, '', `?${new URLSearchParams({ run: id })}#text`);
    return open([id], false);
  }

  function openCompare(a, b) {
    if (config.mode === 'http') history.pushState(null, '', `?${new URLSearchParams([['run', a], ['run', b], ['compare', '1']])}#compare`);
    return open([a, b], true);
  }

  for (const t of TABS) tabButtons[t].addEventListener('click', () => show(t));
  document.querySelector('.tabs').addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
    const list = TABS.filter(available);
    const next = list[(list.indexOf(active) + (e.key === 'ArrowRight' ? 1 : list.length - 1)) % list.length];
    show(next);
    tabButtons[next].focus();
  });

  return {
    async start() {
      const ids = config.runs || [];
      if (!ids.length) {
        if (config.mode !== 'http') {
          showError('This page holds no run.');
          $('loading').hidden = true;
          return;
        }
        $('loading').hidden = true;
        $('run-title').textContent = '';
        $('run-meta').textContent = 'Pick a run, or capture a new one.';
        setTabs(['runs']);
        show('runs');
        window.attnscope = { source, config, runs: [] };
        return;
      }
      await open(config.compare && ids.length >= 2 ? ids.slice(0, 2) : ids.slice(0, 1), !!(config.compare && ids.length >= 2));
    },
  };
}

async function main() {
  ensureStylesheet();
  let config;
  try {
    config = readConfig();
    const app = createApp(config);
    window.addEventListener('popstate', () => location.reload());
    await app.start();
  } catch (e) {
    console.error(e);
    showError(`attnscope could not start: ${e.message}`);
    $('loading').hidden = true;
  }
}

main();
