import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shortLabel, tokenReadout } from 'attnscope/views/token_label.js';

test('labels make whitespace visible and are cut by code points with an ellipsis', () => {
  assert.equal(shortLabel({ text: ' cat' }), '\u00b7cat');
  assert.equal(shortLabel({ text: 'abcdef' }, 4), 'abc\u2026');
  assert.equal(shortLabel({ text: 'abcd' }, 4), 'abcd');
  assert.equal(shortLabel({ text: '😀😀😀' }, 2), '😀\u2026');
  assert.equal(shortLabel({ text: '<script>' }, 20), '<script>');   // text, never markup
  assert.equal(shortLabel(undefined), '?');
});

test('readout names the position; invalid UTF-8 shows its bytes', () => {
  const toks = [{ text: ' The' }, { text: '\ufffd', text_hex: 'e282' }];
  assert.equal(tokenReadout(toks, 0), '0 \u201c\u00b7The\u201d');
  assert.match(tokenReadout(toks, 1), /^1 \u201c.*e2.*82.*\u201d$/);
  assert.equal(tokenReadout(toks, 7), '7');
});
