// The served run list (GET /api/runs) and, when the server has a model
// (ATTNSCOPE_CONFIG.captureEnabled), the prompt box: POST /api/capture, then poll
// GET /api/jobs/<id> showing the progress, and open the new run.
//
// Hooks: table.run-list tr[data-run-id]; form.capture with textarea[name=prompt],
// input[name=max_new_tokens], progress.capture-progress, .capture-status.

const POLL_MS = 400;
const DONE_PHASES = new Set(['done', 'finished', 'complete', 'completed']);
const FAILED_PHASES = new Set(['error', 'failed', 'cancelled', 'canceled']);

// What a job status says: "failed", "done" (its run is ready) or "running".
export function jobOutcome(job) {
  if (!job || job.error || FAILED_PHASES.has(String(job.phase).toLowerCase())) return 'failed';
  if (job.run && DONE_PHASES.has(String(job.phase).toLowerCase())) return 'done';
  return 'running';
}

// Human text for a job status.
export function jobText(job) {
  if (job.error) return `Failed: ${job.error}`;
  if (FAILED_PHASES.has(String(job.phase).toLowerCase())) return `Stopped: ${job.phase}`;
  const phase = job.phase ? String(job.phase) : 'working';
  return job.total > 0 ? `${phase}: ${job.done} / ${job.total}` : `${phase}…`;
}

function el(tag, props = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

function shorten(s, n) {
  s = String(s || '').replace(/\s+/g, ' ');
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

// mountRuns(container, {source, config, openRun(id), openCompare(idA, idB)}) -> {refresh(), destroy()}
export function mountRuns(container, { source, config, openRun, openCompare }) {
  const root = el('section', { class: 'runs' });
  const heading = el('h2', { text: 'Runs' });
  const status = el('p', { class: 'runs-status', 'aria-live': 'polite' });
  const table = el('table', { class: 'run-list' });
  const compareBtn = el('button', { type: 'button', class: 'compare-selected', text: 'Compare the two selected runs' });
  compareBtn.disabled = true;
  const refreshBtn = el('button', { type: 'button', text: 'Refresh' });
  const actions = el('div', { class: 'runs-actions' }, [refreshBtn, compareBtn]);
  root.append(heading);
  let stopPolling = false;

  if (config.captureEnabled && typeof source.startCapture === 'function') root.append(captureForm());
  root.append(actions, status, table);
  container.appendChild(root);

  function selected() {
    return [...table.querySelectorAll('input[type=checkbox]:checked')].map((c) => c.value);
  }
  table.addEventListener('change', () => {
    compareBtn.disabled = selected().length !== 2;
  });
  compareBtn.addEventListener('click', () => {
    const ids = selected();
    if (ids.length === 2) openCompare(ids[0], ids[1]);
  });
  refreshBtn.addEventListener('click', () => refresh());

  async function refresh() {
    status.textContent = 'Loading runs…';
    let runs;
    try {
      runs = await source.listRuns();
    } catch (e) {
      status.textContent = `Could not list the runs: ${e.message}`;
      return;
    }
    status.textContent = runs.length ? '' : 'No runs yet.';
    const head = el('tr', {}, ['', 'Run', 'Model', 'Prompt', 'Tokens', ''].map((t) => el('th', t === 'Tokens' ? { class: 'num', text: t } : { text: t })));
    const rows = runs.map((r) => {
      const link = el('a', { href: `?${new URLSearchParams({ run: r.id })}`, text: r.name || r.id });
      link.addEventListener('click', (e) => {
        if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey) return;
        e.preventDefault();
        openRun(r.id);
      });
      const check = el('input', { type: 'checkbox', value: r.id, 'aria-label': `select ${r.name || r.id} for comparison` });
      return el('tr', { 'data-run-id': r.id }, [
        el('td', {}, [check]),
        el('td', {}, [link]),
        el('td', { text: r.model || '' }),
        el('td', { class: 'prompt', title: String(r.prompt || ''), text: shorten(r.prompt, 80) }),
        el('td', { class: 'num', text: String(r.n_tokens ?? '') }),
        el('td', { text: r.complete ? '' : 'incomplete' }),
      ]);
    });
    table.replaceChildren(el('thead', {}, [head]), el('tbody', {}, rows));
    compareBtn.disabled = true;
  }

  function captureForm() {
    const prompt = el('textarea', { name: 'prompt', rows: '3', required: '', placeholder: 'Type a prompt…', 'aria-label': 'Prompt' });
    const maxNew = el('input', { name: 'max_new_tokens', type: 'number', min: '0', max: '512', value: '32' });
    const go = el('button', { type: 'submit', text: 'Capture' });
    const progress = el('progress', { class: 'capture-progress', max: '1', value: '0' });
    progress.hidden = true;
    const note = el('span', { class: 'capture-status', 'aria-live': 'polite' });
    const form = el('form', { class: 'capture' }, [
      el('label', { class: 'capture-prompt' }, ['Prompt', prompt]),
      el('div', { class: 'capture-row' }, [el('label', {}, ['New tokens ', maxNew]), go, progress, note]),
    ]);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const n = Number(maxNew.value);
      if (!prompt.value.trim() || !Number.isInteger(n) || n < 0 || n > 512) {
        note.textContent = 'Type a prompt and a whole number of new tokens (0 to 512).';
        return;
      }
      go.disabled = true;
      progress.hidden = false;
      progress.removeAttribute('value'); // indeterminate until the first status
      note.textContent = 'Starting…';
      try {
        const jobId = await source.startCapture(prompt.value, n);
        const run = await poll(jobId, progress, note);
        if (run) {
          await refresh();
          openRun(run);
        }
      } catch (err) {
        note.textContent = `Failed: ${err.message}`;
      } finally {
        go.disabled = false;
      }
    });
    return form;
  }

  async function poll(jobId, progress, note) {
    for (;;) {
      if (stopPolling) return null;
      const job = await source.job(jobId);
      note.textContent = jobText(job);
      if (job.total > 0) {
        progress.max = job.total;
        progress.value = Math.min(job.done, job.total);
      }
      const outcome = jobOutcome(job);
      if (outcome === 'failed') {
        progress.hidden = true;
        return null;
      }
      if (outcome === 'done') {
        note.textContent = 'Done.';
        return job.run;
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  refresh();
  return {
    refresh,
    destroy() {
      stopPolling = true;
      root.remove();
    },
  };
}
