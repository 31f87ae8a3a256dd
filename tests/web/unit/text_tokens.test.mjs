import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tokenDisplay, tokenLabel, textParts, byteParts, hexToBytes } from 'attnscope/views/text_tokens.js';

const kinds = (d) => d.parts.map((p) => [p.kind, p.text]);

test('leading spaces become a faint middle dot, the word stays text', () => {
  assert.deepEqual(kinds(tokenDisplay({ text: ' cat' })), [['space', '·'], ['text', 'cat']]);
  assert.deepEqual(kinds(tokenDisplay({ text: '  ' })), [['space', '·'], ['space', '·']]);
  assert.deepEqual(kinds(tokenDisplay({ text: 'a b' })), [['text', 'a'], ['space', '·'], ['text', 'b']]);
});

test('newlines show ↵ and are marked as line breaks; \\r\\n is one break; tabs and controls are visible', () => {
  assert.deepEqual(kinds(tokenDisplay({ text: '\n' })), [['newline', '↵']]);
  assert.deepEqual(kinds(tokenDisplay({ text: '\n\n' })), [['newline', '↵'], ['newline', '↵']]);
  assert.deepEqual(kinds(tokenDisplay({ text: 'x\r\ny' })), [['text', 'x'], ['newline', '↵'], ['text', 'y']]);
  assert.deepEqual(kinds(tokenDisplay({ text: '\t' })), [['tab', '→']]);
  assert.deepEqual(kinds(tokenDisplay({ text: '\u0007' })), [['control', '␇']]);
  assert.deepEqual(kinds(tokenDisplay({ text: '\r' })), [['control', '␍']]);
  assert.deepEqual(kinds(tokenDisplay({ text: '\u00a0' })), [['space', '⍽']]);
});

test('invisible and bidi control characters are named, never applied', () => {
  assert.deepEqual(kinds(tokenDisplay({ text: 'x\u202Eevil' })), [['text', 'x'], ['control', 'RLO'], ['text', 'evil']]);
  assert.deepEqual(kinds(tokenDisplay({ text: '\u200b' })), [['control', 'ZWSP']]);
  assert.deepEqual(kinds(tokenDisplay({ text: '\ufeff' })), [['control', 'BOM']]);
});

test('special tokens are pills; empty tokens show ∅', () => {
  assert.deepEqual(tokenDisplay({ text: '<s>', special: true }), { kind: 'special', parts: [{ kind: 'text', text: '<s>' }] });
  assert.deepEqual(tokenDisplay({ text: '', special: true }).parts[0].text, '∅');
  assert.deepEqual(tokenDisplay({ text: '' }), { kind: 'empty', parts: [{ kind: 'control', text: '∅' }] });
});

test('bytes that are not valid UTF-8 (text_hex) show as hex, valid neighbours as text', () => {
  assert.deepEqual(kinds(tokenDisplay({ text: '\ufffd', text_hex: 'e282' })), [['byte', 'e2'], ['byte', '82']]);
  assert.deepEqual(kinds(tokenDisplay({ text: '\ufffd', text_hex: 'ac' })), [['byte', 'ac']]);
  assert.deepEqual(kinds(tokenDisplay({ text: ' a\ufffd', text_hex: '2061e2' })), [['space', '·'], ['text', 'a'], ['byte', 'e2']]);
  assert.deepEqual(kinds({ parts: byteParts(hexToBytes('e282ac')) }), [['text', '€']]);
  assert.deepEqual(kinds({ parts: byteParts(hexToBytes('c0af')) }), [['byte', 'c0'], ['byte', 'af']], 'overlong: invalid');
  assert.deepEqual(kinds(tokenDisplay({ text: 'ok', text_hex: 'zz' })), [['text', 'ok']], 'bad hex: fall back to text');
});

test('untrusted text is returned as plain strings, never interpreted', () => {
  const evil = '<img src=x onerror=alert(1)>';
  const d = tokenDisplay({ text: evil });
  assert.equal(d.kind, 'text');
  assert.equal(d.parts.map((p) => (p.kind === 'space' ? ' ' : p.text)).join(''), evil);
  for (const p of d.parts) assert.equal(typeof p.text, 'string');
  assert.equal(tokenLabel({ text: '<script>alert(2)</script>' }), '<script>alert(2)</script>');
  assert.equal(tokenLabel({ text: ' &amp;' }), '·&amp;');
  assert.deepEqual(kinds(tokenDisplay({ text: '<s>' })), [['text', '<s>']], 'not special: plain text');
});

test('astral characters stay whole; labels are short', () => {
  assert.deepEqual(textParts('😀 x'), [{ kind: 'text', text: '😀' }, { kind: 'space', text: '·' }, { kind: 'text', text: 'x' }]);
  assert.equal(tokenLabel({ text: ' cat' }), '·cat');
  assert.equal(tokenLabel({ text: '\u202E' }), '‹RLO›');
  assert.equal(tokenLabel({ text: 'x'.repeat(100) }).length, 40);
});
