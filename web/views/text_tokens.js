// Token rules of the text views, as pure functions (no DOM, no markup):
// - how a token's text is shown: whitespace, newlines, control and bidi characters,
//   special tokens and bytes that are not valid UTF-8 become visible, readable parts;
// - which attention row stands for a token under each reading.
//
// Token text is untrusted model output. These functions return plain strings; the view
// puts them into the page with textContent only.

// ---- display ----------------------------------------------------------------------------

// Part kinds: "text" (shown as is), "space" (a faint ·), "newline" (a faint ↵, followed
// by a real line break), "tab" (→), "control" (a named invisible or control character),
// "byte" (one byte that is not valid UTF-8, as hex).

const CONTROL_NAMES = {
  0x200b: 'ZWSP', 0x200c: 'ZWNJ', 0x200d: 'ZWJ', 0x2060: 'WJ', 0xfeff: 'BOM', 0x00ad: 'SHY',
  0x200e: 'LRM', 0x200f: 'RLM', 0x061c: 'ALM',
  0x202a: 'LRE', 0x202b: 'RLE', 0x202c: 'PDF', 0x202d: 'LRO', 0x202e: 'RLO',
  0x2066: 'LRI', 0x2067: 'RLI', 0x2068: 'FSI', 0x2069: 'PDI',
  0x2028: 'LSEP', 0x2029: 'PSEP',
};

// Unicode spaces other than U+0020 that would otherwise be invisible or ambiguous.
const OTHER_SPACES = new Set([0x00a0, 0x1680, 0x202f, 0x205f, 0x3000, ...Array.from({ length: 11 }, (_, i) => 0x2000 + i)]);

function classify(cp) {
  if (cp === 0x20) return { kind: 'space', text: '·' };
  if (cp === 0x0a) return { kind: 'newline', text: '↵' };
  if (cp === 0x09) return { kind: 'tab', text: '→' };
  if (cp < 0x20) return { kind: 'control', text: String.fromCodePoint(0x2400 + cp) }; // ␀ .. ␟
  if (cp === 0x7f) return { kind: 'control', text: '␡' };
  if (cp >= 0x80 && cp < 0xa0) return { kind: 'control', text: `U+${cp.toString(16).toUpperCase().padStart(4, '0')}` };
  if (CONTROL_NAMES[cp]) return { kind: 'control', text: CONTROL_NAMES[cp] };
  if (OTHER_SPACES.has(cp)) return { kind: 'space', text: cp === 0x00a0 ? '⍽' : '␣' };
  return null;
}

// Parts of a string (valid text): consecutive ordinary characters join into one part.
export function textParts(text) {
  const parts = [];
  let run = '';
  const flush = () => {
    if (run) parts.push({ kind: 'text', text: run });
    run = '';
  };
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i);
    const width = cp > 0xffff ? 2 : 1;
    if (cp === 0x0d && text.charCodeAt(i + 1) === 0x0a) {
      // \r\n is one line break
      flush();
      parts.push({ kind: 'newline', text: '↵' });
      i += 2;
      continue;
    }
    const special = classify(cp);
    if (special) {
      flush();
      parts.push(special);
    } else {
      run += text.slice(i, i + width);
    }
    i += width;
  }
  flush();
  return parts;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function sequenceLength(lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

// Parts of exact bytes that may not be valid UTF-8: valid sequences as text parts,
// every other byte as a "byte" part ("e2").
export function byteParts(bytes) {
  const parts = [];
  let run = '';
  const flush = () => {
    if (run) parts.push(...textParts(run));
    run = '';
  };
  for (let i = 0; i < bytes.length; ) {
    const len = sequenceLength(bytes[i]);
    let ch = null;
    if (len && i + len <= bytes.length) {
      try {
        ch = utf8.decode(bytes.subarray(i, i + len));
      } catch {
        ch = null;
      }
    }
    if (ch !== null) {
      run += ch;
      i += len;
    } else {
      flush();
      parts.push({ kind: 'byte', text: bytes[i].toString(16).padStart(2, '0') });
      i += 1;
    }
  }
  flush();
  return parts;
}

export function hexToBytes(hex) {
  if (typeof hex !== 'string' || hex.length % 2 || /[^0-9a-f]/i.test(hex)) throw new Error(`invalid text_hex: ${hex}`);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

// How a manifest token is shown: {kind, parts}.
//   kind "special": a special token (<s>, <|im_end|>), shown as a pill of its text;
//   kind "empty":   a token without text, a pill "∅";
//   kind "text":    ordinary text parts (possibly with "byte" parts when the token's
//                   bytes are not valid UTF-8 on their own: text_hex in the manifest).
export function tokenDisplay(token) {
  const text = typeof token.text === 'string' ? token.text : '';
  if (token.special) return { kind: 'special', parts: [{ kind: 'text', text: text || '∅' }] };
  let parts;
  if (typeof token.text_hex === 'string') {
    try {
      parts = byteParts(hexToBytes(token.text_hex));
    } catch {
      parts = textParts(text);
    }
  } else {
    parts = textParts(text);
  }
  if (!parts.length) return { kind: 'empty', parts: [{ kind: 'control', text: '∅' }] };
  return { kind: 'text', parts };
}

// A short plain label for a token (readouts, tooltips): its parts joined; bytes as ‹e2›.
export function tokenLabel(token) {
  const d = tokenDisplay(token);
  const s = d.parts.map((p) => (p.kind === 'byte' ? `‹${p.text}›` : p.kind === 'control' && p.text.length > 1 ? `‹${p.text}›` : p.text)).join('');
  return s.length > 40 ? `${s.slice(0, 39)}…` : s;
}

// ---- readings ---------------------------------------------------------------------------

// The query row that stands for token `index` in the observer view:
// - "own": the token's own row (what the model attended to at that position, i.e.
//   while producing the *next* token);
// - "producing" (default): for a generated token, the row of the position before it —
//   the attention while the model produced this token (att_viz's reading). A prompt
//   token was not produced, so it keeps its own row. The first generated token uses
//   the last prompt row.
// Returns -1 when there is no such row (a generated token at position 0).
export function queryRow(index, reading, generated) {
  if (reading === 'producing' && generated) return index - 1;
  return index;
}

// The row of token `index` if it is stored (0 <= row < nRows), else null.
export function storedRow(index, reading, generated, nRows) {
  const r = queryRow(index, reading, generated);
  return r >= 0 && r < nRows ? r : null;
}

// Observed view, consistent with the observer view: token t's weight for the focus j is
// A[row(t), j] with row(t) = storedRow(t) — exactly what the observer view shows on j
// when t is focused. Tokens whose row is before j (or not stored) get nothing.
// `column` holds A[j .. nRows-1, j] (the request q0 = j, q1 = nRows, k0 = j, k1 = j + 1).
// Returns [[t, weight], ...] for t >= j.
export function observedWeights(j, column, tokens, reading, nRows) {
  const out = [];
  for (let t = j; t < tokens.length; t++) {
    const r = storedRow(t, reading, !!tokens[t].generated, nRows);
    if (r === null || r < j) continue;
    out.push([t, column[r - j]]);
  }
  return out;
}

// Observer view: token k's weight for the focus i is A[row(i), k], k <= row(i).
// `row` holds A[r, 0 .. r]. Returns [[k, weight], ...].
export function observerWeights(row) {
  const out = [];
  for (let k = 0; k < row.length; k++) out.push([k, row[k]]);
  return out;
}
