import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildLut, createScale, scalePosition, autoDomain, linearTicks, logTicks, formatValue, inkFor, LUT_SIZE, PALETTES,
} from 'attnscope/color/scale.js';
import { legendTicks } from 'attnscope/ui/legend.js';

const hex = (h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));

test('the LUT has 256 RGBA entries whose ends are the palette ends', () => {
  for (const name of Object.keys(PALETTES)) {
    const lut = buildLut(name);
    assert.equal(lut.length, LUT_SIZE * 4);
    const stops = PALETTES[name];
    assert.deepEqual([...lut.slice(0, 3)], hex(stops[0]));
    assert.deepEqual([...lut.slice(255 * 4, 255 * 4 + 3)], hex(stops[stops.length - 1]));
    for (let i = 0; i < LUT_SIZE; i++) assert.equal(lut[4 * i + 3], 255);
    assert.equal(buildLut(name), lut, 'built once, then reused');
  }
  assert.throws(() => buildLut('rainbow'), /invalid palette: rainbow/);
});

test('the blues LUT gets darker monotonically (a weight of 0 is near white)', () => {
  const lut = buildLut('blues');
  let prev = Infinity;
  for (let i = 0; i < LUT_SIZE; i++) {
    const sum = lut[4 * i] + lut[4 * i + 1] + lut[4 * i + 2];
    assert.ok(sum <= prev, `entry ${i}`);
    prev = sum;
  }
  assert.ok(lut[0] > 240 && lut[1] > 240 && lut[2] > 240);
});

test('linear mapping', () => {
  const s = createScale({ type: 'linear', min: 0, max: 0.5 });
  assert.equal(s.position(0), 0);
  assert.equal(s.position(0.25), 0.5);
  assert.equal(s.position(0.5), 1);
  assert.equal(s.position(0.9), 1, 'clamped above');
  assert.equal(s.position(-1), 0, 'clamped below');
  assert.equal(s.position(NaN), 0);
  assert.equal(s.index(0), 0);
  assert.equal(s.index(0.5), 255);
  assert.equal(s.index(0.25), 128);
  assert.match(s.css(0.5), /^rgb\(8, 48, 107\)$/);
});

test('log mapping: decades are evenly spaced; values at or below min give 0', () => {
  const s = createScale({ type: 'log', min: 0.001, max: 1 });
  assert.ok(Math.abs(s.position(0.01) - 1 / 3) < 1e-12);
  assert.ok(Math.abs(s.position(0.1) - 2 / 3) < 1e-12);
  assert.equal(s.position(1), 1);
  assert.equal(s.position(0.001), 0);
  assert.equal(s.position(0), 0);
  assert.equal(s.position(1e-9), 0);
  // log shows small weights that linear hides
  const lin = createScale({ type: 'linear', min: 0, max: 1 });
  assert.ok(s.index(0.01) > 80 && lin.index(0.01) < 5);
  assert.throws(() => createScale({ type: 'log', min: 0, max: 1 }), /invalid log domain/);
  assert.throws(() => createScale({ type: 'cubic' }), /invalid scale: cubic/);
  assert.throws(() => createScale({ min: 1, max: 1 }), /invalid domain/);
});

test('both mappings are monotonic', () => {
  for (const type of ['linear', 'log']) {
    const s = createScale({ type, min: type === 'log' ? 1e-4 : 0, max: 0.8 });
    let prevP = -1;
    let prevI = -1;
    for (let v = 0; v <= 1; v += 0.0007) {
      const p = s.position(v);
      const i = s.index(v);
      assert.ok(p >= prevP && i >= prevI, `${type} at ${v}`);
      prevP = p;
      prevI = i;
    }
  }
  assert.equal(scalePosition(0.5, { type: 'linear', min: 0, max: 1 }), 0.5);
});

test('autoDomain: [0, max] linear, [max/1000, max] log, always a valid domain', () => {
  assert.deepEqual(autoDomain([0, 0.2, 0.5, 0.1]), { min: 0, max: 0.5 });
  assert.deepEqual(autoDomain([0, 0.2, 0.5, 0.1], 'log'), { min: 0.5 * 1e-3, max: 0.5 });
  assert.deepEqual(autoDomain([1], 'log'), { min: 1e-3, max: 1 }, 'a single weight');
  for (const type of ['linear', 'log']) {
    for (const v of [[], [0], [1], [0, 0.3], [1e-30]]) assert.doesNotThrow(() => createScale({ type, ...autoDomain(v, type) }));
  }
  assert.deepEqual(autoDomain([]), { min: 0, max: 1 });
  assert.deepEqual(autoDomain([0, 0], 'log'), { min: 1e-3, max: 1 });
  assert.deepEqual(autoDomain(new Float32Array([0.25, 0.5])), { min: 0, max: 0.5 });
});

test('ticks: nice linear steps, powers of ten on log', () => {
  assert.deepEqual(linearTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(linearTicks(0, 0.62, 5), [0, 0.2, 0.4, 0.6]);
  assert.deepEqual(linearTicks(0, 0.62, 3), [0, 0.5]);
  assert.deepEqual(linearTicks(0, 0.0588, 3), [0, 0.02, 0.04]);
  assert.deepEqual(logTicks(0.001, 1), [0.001, 0.01, 0.1, 1]);
  assert.deepEqual(logTicks(0.0005, 0.5), [0.001, 0.01, 0.1]);
  assert.deepEqual(logTicks(0.1, 0.5), [0.1, 0.2, 0.5], 'within one decade: 1-2-5');
  const s = createScale({ type: 'log', min: 0.0005, max: 0.5 });
  assert.deepEqual(s.ticks(), [0.001, 0.01, 0.1]);
});

test('legend ticks include both ends and stay in order', () => {
  const s = createScale({ type: 'linear', min: 0, max: 0.62 });
  const t = legendTicks(s);
  assert.equal(t[0].value, 0);
  assert.equal(t[0].position, 0);
  assert.equal(t.at(-1).value, 0.62);
  assert.equal(t.at(-1).position, 1);
  assert.deepEqual(t.map((x) => x.label), ['0', '0.2', '0.4', '0.62']);
  for (let i = 1; i < t.length; i++) assert.ok(t[i].position > t[i - 1].position);
  const lg = legendTicks(createScale({ type: 'log', min: 0.0005, max: 0.5 }));
  assert.deepEqual(lg.map((x) => x.label), ['5.0e−4', '0.01', '0.1', '0.5'], 'a tick too close to an end is dropped');
});

test('formatValue and ink', () => {
  assert.equal(formatValue(0), '0');
  assert.equal(formatValue(0.123456), '0.123');
  assert.equal(formatValue(1), '1');
  assert.equal(formatValue(0.00123), '0.00123');
  assert.equal(formatValue(0.0000123), '1.2e−5');
  assert.equal(inkFor([255, 255, 255]), '#1b1f24');
  assert.equal(inkFor([8, 48, 107]), '#ffffff');
});
