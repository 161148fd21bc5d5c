import { describe, expect, it } from 'vitest';
import { RleError, decodeRle, encodeRle } from '../src/util/rle';

describe('RLE masks', () => {
  it('decodes row-major runs starting with zeros', () => {
    const m = decodeRle({ shape: [2, 3], counts: [1, 2, 2, 1] });
    expect([...m]).toEqual([0, 1, 1, 0, 0, 1]);
  });

  it('decodes column-major (COCO order) into row-major', () => {
    // columns: [0,1], [1,0], [0,0] -> rows: [0,1,0], [1,0,0]
    const m = decodeRle({ shape: [2, 3], counts: [1, 2, 3], order: 'column' });
    expect([...m]).toEqual([0, 1, 0, 1, 0, 0]);
  });

  it('starts with a zero-length run for masks that begin inside', () => {
    expect([...decodeRle({ shape: [1, 3], counts: [0, 3] })]).toEqual([1, 1, 1]);
  });

  it('writes a label value', () => {
    expect([...decodeRle({ shape: [1, 2], counts: [1, 1], value: 7 })]).toEqual([0, 7]);
  });

  it('round-trips', () => {
    const src = Uint8Array.from({ length: 512 * 512 }, (_, i) => ((i * 7919) % 13 < 4 ? 1 : 0));
    const enc = encodeRle(src, [512, 512]);
    expect(decodeRle(enc)).toEqual(src);
  });

  it('rejects runs that do not add up', () => {
    expect(() => decodeRle({ shape: [2, 2], counts: [1, 1] })).toThrow(RleError);
    expect(() => decodeRle({ shape: [2, 2], counts: [3, 3] })).toThrow(/more than 4/);
    expect(() => decodeRle({ shape: [2, 2], counts: [-1, 5] })).toThrow(/non-negative/);
    expect(() => decodeRle({ shape: [0, 2], counts: [] })).toThrow(/positive/);
  });
});
