/**
 * Label masks as the server sends them: `encoding: "rle-u8-u32le"` (inference/pipelines/encoding.py), used by
 * `analysis.partial` {kind: "mask"} events and by `/api/analysis/studies/<uid>/results/` segmentations.
 *
 * The uint8 label array is flattened in C order (slice, row, column) and stored as consecutive 5-byte runs:
 * 1 byte label value, then the run length as a 4-byte unsigned little-endian integer. Runs may cross rows and
 * slices. The bytes travel base64-encoded.
 */
export const RLE_ENCODING = 'rle-u8-u32le';
const RUN_BYTES = 5;

export class RleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RleError';
  }
}

export function base64ToBytes(b64: string): Uint8Array {
  let bin: string;
  try {
    bin = atob(b64);
  } catch {
    throw new RleError('mask data is not valid base64');
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function bytesToBase64(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

/** Number of voxels of a shape, checked (positive integers). */
export function voxelCount(shape: readonly number[]): number {
  if (!Array.isArray(shape) || !shape.length || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new RleError(`mask shape must be positive integers, got ${JSON.stringify(shape)}`);
  }
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Decode runs into a uint8 array of `shape` (C order). `out`, when given, must have exactly that many voxels.
 * Throws RleError when the bytes are not whole runs or the runs do not cover the shape exactly.
 */
export function decodeRle(bytes: Uint8Array, shape: readonly number[], out?: Uint8Array): Uint8Array {
  const n = voxelCount(shape);
  if (bytes.length % RUN_BYTES) throw new RleError(`mask data is ${bytes.length} bytes, not a whole number of ${RUN_BYTES}-byte runs`);
  const result = out ?? new Uint8Array(n);
  if (result.length !== n) throw new RleError(`output buffer has ${result.length} voxels, mask has ${n}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  for (let off = 0; off < bytes.length; off += RUN_BYTES) {
    const value = bytes[off];
    const length = view.getUint32(off + 1, true);
    if (pos + length > n) throw new RleError(`runs cover more than the ${n} voxels of shape ${JSON.stringify(shape)}`);
    // A fresh buffer is zero already: only non-zero runs need writing.
    if (value !== 0 || out) result.fill(value, pos, pos + length);
    pos += length;
  }
  if (pos !== n) throw new RleError(`runs cover ${pos} voxels, shape ${JSON.stringify(shape)} has ${n}`);
  return result;
}

/** Decode a mask payload ({encoding, data (base64), shape}). */
export function decodeMask(mask: { encoding?: string; data: string; shape: readonly number[] }): Uint8Array {
  if (mask.encoding !== undefined && mask.encoding !== RLE_ENCODING) {
    throw new RleError(`unsupported mask encoding "${mask.encoding}" (this viewer reads ${RLE_ENCODING})`);
  }
  return decodeRle(base64ToBytes(mask.data), mask.shape);
}

/** The inverse of decodeRle (used by tests; the server encodes the same way). */
export function encodeRle(labels: ArrayLike<number>): Uint8Array {
  const runs: [number, number][] = [];
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i] & 0xff;
    const last = runs[runs.length - 1];
    if (last && last[0] === v && last[1] < 0xffffffff) last[1]++;
    else runs.push([v, 1]);
  }
  const out = new Uint8Array(runs.length * RUN_BYTES);
  const view = new DataView(out.buffer);
  runs.forEach(([v, len], k) => {
    out[k * RUN_BYTES] = v;
    view.setUint32(k * RUN_BYTES + 1, len, true);
  });
  return out;
}
