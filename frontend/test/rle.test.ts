import { describe, expect, it } from 'vitest';
import { RLE_ENCODING, RleError, base64ToBytes, bytesToBase64, decodeMask, decodeRle, encodeRle } from '../src/util/rle';

// Written by inference/pipelines/encoding.py rle_encode_b64 for a (2, 3, 4) uint8 array with
// [0,1,1:3] = 1, [1,0,0] = 2, [1,2,3] = 3.
const SERVER_B64 = 'AAUAAAABAgAAAAAFAAAAAgEAAAAACgAAAAMBAAAA';
const SERVER_FLAT = [0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3];

describe('rle-u8-u32le masks', () => {
  it('decodes what the server encodes (C order over slice, row, column)', () => {
    const m = decodeMask({ encoding: RLE_ENCODING, data: SERVER_B64, shape: [2, 3, 4] });
    expect([...m]).toEqual(SERVER_FLAT);
    // slice 1, row 2, column 3
    expect(m[1 * 12 + 2 * 4 + 3]).toBe(3);
  });

  it('reads 5-byte runs: value byte, then a little-endian uint32 length', () => {
    const bytes = Uint8Array.from([7, 0x03, 0x00, 0x00, 0x00, 0, 0x01, 0x01, 0x00, 0x00]); // 3 x 7, 257 x 0
    const m = decodeRle(bytes, [1, 260]);
    expect([...m.subarray(0, 4)]).toEqual([7, 7, 7, 0]);
    expect(m.length).toBe(260);
    expect(m.filter((v) => v === 0).length).toBe(257);
  });

  it('runs may cross rows and slices', () => {
    const src = Uint8Array.from({ length: 3 * 4 * 5 }, (_, i) => (i >= 17 && i < 43 ? 2 : 0));
    expect(decodeRle(encodeRle(src), [3, 4, 5])).toEqual(src);
  });

  it('round-trips a 8 x 512 x 512 label slab through base64', () => {
    // Organ-like blobs: a disc of label z % 3 + 1 per slice.
    const src = new Uint8Array(8 * 512 * 512);
    for (let z = 0; z < 8; z++) {
      for (let r = 0; r < 512; r++) {
        for (let c = 0; c < 512; c++) if ((r - 256) ** 2 + (c - 200 - z * 10) ** 2 < 90 ** 2) src[z * 512 * 512 + r * 512 + c] = (z % 3) + 1;
      }
    }
    const b64 = bytesToBase64(encodeRle(src));
    const t0 = performance.now();
    const out = decodeMask({ encoding: RLE_ENCODING, data: b64, shape: [8, 512, 512] });
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(out.length).toBe(src.length);
    let diff = 0;
    for (let i = 0; i < src.length; i++) if (out[i] !== src[i]) diff++;
    expect(diff).toBe(0);
    expect(base64ToBytes(b64).length % 5).toBe(0);
  });

  it('writes into a given buffer (clearing what was there)', () => {
    const out = new Uint8Array(6).fill(9);
    decodeRle(encodeRle([0, 1, 1, 0, 0, 2]), [2, 3], out);
    expect([...out]).toEqual([0, 1, 1, 0, 0, 2]);
  });

  it('rejects data that does not fit the shape or the format', () => {
    expect(() => decodeRle(Uint8Array.from([1, 2, 0, 0]), [1, 2])).toThrow(/whole number of 5-byte runs/);
    expect(() => decodeRle(encodeRle([1, 1, 1]), [1, 2])).toThrow(/more than the 2 voxels/);
    expect(() => decodeRle(encodeRle([1]), [1, 2])).toThrow(RleError);
    expect(() => decodeRle(encodeRle([1]), [0, 2])).toThrow(/positive integers/);
    expect(() => decodeMask({ encoding: 'coco-rle', data: '', shape: [1] })).toThrow(/unsupported mask encoding/);
    expect(() => decodeMask({ data: '%%%', shape: [1] })).toThrow(/base64/);
    expect(() => decodeRle(encodeRle([1]), [1, 2], new Uint8Array(3))).toThrow(/output buffer/);
  });
});
