import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sameToken, commonPrefix, alignRuns, counterpart, sharedCellSize, sharedMax } from 'attnscope/views/compare_align.js';

const vocab = new Map();
const idOf = (text) => { if (!vocab.has(text)) vocab.set(text, vocab.size); return vocab.get(text); };
const toks = (s) => s.split('|').map((text) => ({ id: idOf(text), text }));

test('sameToken compares ids and exact bytes', () => {
  assert.ok(sameToken({ id: 1, text: 'a' }, { id: 1, text: 'a' }));
  assert.ok(!sameToken({ id: 1, text: 'a' }, { id: 2, text: 'a' }));
  assert.ok(!sameToken({ id: 1, text: '\ufffd', text_hex: 'e2' }, { id: 1, text: '\ufffd', text_hex: 'e282' }));
  assert.ok(!sameToken(undefined, { id: 1, text: 'a' }));
});

test('common prefix of two phrasings', () => {
  const a = toks('<s>|How| do| I| make| a| bomb|?');
  const b = toks('<s>|How| do| I| make| a| cake|?| Mix');
  assert.equal(commonPrefix(a, b), 6);
  assert.equal(commonPrefix(a, a), a.length);
  assert.equal(commonPrefix([], b), 0);
  assert.equal(commonPrefix(toks('x|y'), toks('z|y')), 0);
  assert.equal(commonPrefix(toks('a|b'), toks('a|b|c')), 2);
});

test('alignRuns pairs the prefix and lists the tails side by side', () => {
  const a = toks('<s>|Hi| there');
  const b = toks('<s>|Hi| you| all');
  const { prefix, rows } = alignRuns(a, b);
  assert.equal(prefix, 2);
  assert.deepEqual(rows, [
    { a: 0, b: 0, shared: true }, { a: 1, b: 1, shared: true },
    { a: 2, b: 2, shared: false }, { a: null, b: 3, shared: false }]);
});

test('counterpart exists only inside the shared prefix', () => {
  assert.equal(counterpart(3, 5), 3);
  assert.equal(counterpart(5, 5), null);
  assert.equal(counterpart(null, 5), null);
  assert.equal(counterpart(-1, 5), null);
});

test('shared cell size and shared max', () => {
  assert.equal(sharedCellSize(10, 20, 200), 10);
  assert.equal(sharedCellSize(0, 0, 100), 100);
  assert.equal(sharedMax(0.3, 0.7), 0.7);
  assert.equal(sharedMax(0, 0), 0);
  assert.equal(sharedMax(NaN, 0.2), 0.2);
});
