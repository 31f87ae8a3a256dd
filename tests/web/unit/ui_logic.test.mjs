import { test } from 'node:test';
import assert from 'node:assert/strict';
import { headValue, parseHeadValue, HEAD_CHOICES, READING_CHOICES } from 'attnscope/ui/controls.js';
import { jobOutcome, jobText } from 'attnscope/ui/runs.js';

test('the head selector covers single heads and every aggregate', () => {
  assert.equal(headValue({ agg: 'none', head: 3 }), '3');
  assert.equal(headValue({ agg: 'rollout', head: 3 }), 'rollout');
  assert.deepEqual(parseHeadValue('12'), { agg: 'none', head: 12 });
  for (const agg of ['head-mean', 'head-max', 'layer-mean', 'rollout']) assert.deepEqual(parseHeadValue(agg), { agg });
  assert.deepEqual(HEAD_CHOICES.map((c) => c.value), ['head-mean', 'head-max', 'layer-mean', 'rollout']);
  assert.throws(() => parseHeadValue('sum'), /invalid head: sum/);
  assert.equal(READING_CHOICES[0].value, 'producing', 'the default reading comes first');
});

test('capture job status', () => {
  assert.equal(jobOutcome({ phase: 'decode', done: 3, total: 8, run: 'r', error: null }), 'running');
  assert.equal(jobOutcome({ phase: 'done', done: 8, total: 8, run: 'r', error: null }), 'done');
  assert.equal(jobOutcome({ phase: 'done', done: 8, total: 8, run: null, error: 'model failed' }), 'failed');
  assert.equal(jobOutcome({ phase: 'cancelled', done: 2, total: 8, run: null, error: null }), 'failed');
  assert.equal(jobText({ phase: 'cancelled', done: 2, total: 8 }), 'Stopped: cancelled');
  assert.equal(jobText({ phase: 'decode', done: 3, total: 8 }), 'decode: 3 / 8');
  assert.equal(jobText({ phase: 'loading', done: 0, total: 0 }), 'loading…');
  assert.equal(jobText({ error: 'boom' }), 'Failed: boom');
});
