import { describe, expect, it } from 'vitest';
import { nextNearest, sliceOrder, volumeEligibility } from '../src/viewer/geometry';
import { actionFor, SHORTCUTS } from '../src/viewer/shortcuts';
import { route } from '../src/router';
import { voiRange, windowFromRange, CT_PRESETS } from '../src/viewer/presets';

const axial = [1, 0, 0, 0, 1, 0];

describe('slice order', () => {
  it('sorts axial slices head first, whatever the instance numbers say', () => {
    const slices = [{ position: [0, 0, -10], orientation: axial, instanceNumber: 1 }, { position: [0, 0, 20], orientation: axial, instanceNumber: 2 }, { position: [0, 0, 5], orientation: axial, instanceNumber: 3 }];
    expect(sliceOrder(slices)).toEqual([1, 2, 0]);
  });

  it('falls back to instance numbers without geometry', () => {
    expect(sliceOrder([{ instanceNumber: 3 }, { instanceNumber: 1 }, { instanceNumber: 2 }])).toEqual([1, 2, 0]);
  });

  it('decides whether MPR is possible', () => {
    const vol = Array.from({ length: 10 }, (_, i) => ({ position: [0, 0, i], orientation: axial, rows: 64, columns: 64 }));
    expect(volumeEligibility('CT', vol).ok).toBe(true);
    expect(volumeEligibility('CR', vol).ok).toBe(false);
    expect(volumeEligibility('CT', vol.slice(0, 2)).reason).toMatch(/at least 3/);
    expect(volumeEligibility('CT', [...vol, { position: [0, 0, 11], orientation: axial, rows: 32, columns: 64 }]).reason).toMatch(/size/);
    expect(volumeEligibility('MR', [{ ...vol[0], frames: 20 }, vol[1], vol[2]]).ok).toBe(false);
  });
});

describe('prefetch order', () => {
  it('radiates from the focus, ahead first', () => {
    const requested = new Uint8Array(7);
    const order: number[] = [];
    for (let i = 0; i < 7; i++) {
      const n = nextNearest(3, requested, 1);
      requested[n] = 1;
      order.push(n);
    }
    expect(order).toEqual([3, 4, 2, 5, 1, 6, 0]);
    expect(nextNearest(3, requested)).toBe(-1);
  });

  it('goes backwards first when scrolling up', () => {
    const requested = new Uint8Array(5);
    requested[2] = 1;
    expect(nextNearest(2, requested, -1)).toBe(1);
  });
});

describe('shortcuts and routes', () => {
  const key = (key: string, extra: Partial<KeyboardEvent> = {}) => ({ key, code: '', shiftKey: false, ctrlKey: false, metaKey: false, altKey: false, ...extra });
  it('maps keys to actions', () => {
    expect(actionFor(key('ArrowDown'))).toBe('next');
    expect(actionFor(key('L', { shiftKey: true }))).toBeUndefined(); // shift+l is not l
    expect(actionFor(key('l'))).toBe('tool:Length');
    expect(actionFor(key('!', { shiftKey: true, code: 'Digit1' }))).toBe('layout1x1');
    expect(actionFor(key('1'))).toBe('preset:lung');
    expect(actionFor(key('c', { ctrlKey: true }))).toBeUndefined();
  });

  it('has no key bound twice', () => {
    const keys = SHORTCUTS.flatMap((s) => s.keys);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('routes paths', () => {
    expect(route('/')).toEqual({ page: 'list' });
    expect(route('/viewer/1.2.840.10008.1')).toEqual({ page: 'viewer', study: '1.2.840.10008.1' });
    expect(route('/viewer/<script>')).toEqual({ page: 'unknown' });
  });

  it('presets convert to VOI ranges and back', () => {
    const lung = CT_PRESETS.find((p) => p.id === 'lung')!;
    expect(voiRange(lung.width, lung.center)).toEqual({ lower: -1350, upper: 150 });
    expect(windowFromRange(voiRange(400, 40))).toEqual({ width: 400, center: 40 });
  });
});

import { imageProblem, transferSyntaxName } from '../src/viewer/validate';

describe('decoded image check', () => {
  const header = { '00280010': { vr: 'US', Value: [4] }, '00280011': { vr: 'US', Value: [2] } };
  const img = (rows: number, columns: number, n: number) => ({ rows, columns, getPixelData: () => new Int16Array(n) });
  it('accepts a full image', () => {
    expect(imageProblem(img(4, 2, 8), header)).toBeUndefined();
  });
  it('flags empty and short images', () => {
    expect(imageProblem(img(0, 0, 0), header)).toMatch(/empty/);
    expect(imageProblem(img(4, 2, 3), header)).toMatch(/3 values for a 2×4 image/);
    expect(imageProblem(undefined, header)).toMatch(/no image/);
  });
  it('names transfer syntaxes', () => {
    expect(transferSyntaxName('1.2.840.10008.1.2.4.90')).toBe('JPEG 2000 Lossless');
    expect(transferSyntaxName('1.2.3')).toBe('1.2.3');
  });
});
