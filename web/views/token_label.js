// Short labels for manifest tokens on axes and in summaries: the text views' label
// (text_tokens.js: whitespace, control characters and invalid bytes made visible), cut
// to a width. Pure: no DOM. The result is untrusted text: callers put it in textContent
// or canvas fillText only.

import { tokenLabel as fullLabel } from 'attnscope/views/text_tokens.js';

/** A label of at most `maxChars` characters (code points), cut with "…"; "?" for no token. */
export function shortLabel(token, maxChars = 12) {
  if (!token) return '?';
  const chars = Array.from(fullLabel(token));
  if (chars.length <= maxChars) return chars.join('');
  return chars.slice(0, Math.max(1, maxChars - 1)).join('') + '\u2026';
}

/** Position and label for a readout: `12 “·cat”`. */
export function tokenReadout(tokens, index, maxChars = 24) {
  const t = tokens && tokens[index];
  if (!t) return `${index}`;
  return `${index} \u201c${shortLabel(t, maxChars)}\u201d`;
}
