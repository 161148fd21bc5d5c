/**
 * Run-length coded binary masks, as AI workers send them in `analysis.partial` {kind: "mask"} events.
 *
 * Format: `{shape: [rows, columns], counts: number[], order?: "row" | "column"}`. Runs alternate starting with a
 * run of zeros (which may be 0 long), like COCO's uncompressed RLE; `order` says how pixels are walked ("row":
 * row-major, the default; "column": column-major, COCO's own order). The decoded mask is row-major either way.
 */
export interface RleMask {
  shape: [number, number];
  counts: number[];
  order?: 'row' | 'column';
  value?: number;
}

export class RleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RleError';
  }
}

export function decodeRle(mask: RleMask, out?: Uint8Array): Uint8Array {
  const [rows, cols] = mask.shape;
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows <= 0 || cols <= 0) {
    throw new RleError(`RLE shape must be two positive integers, got ${JSON.stringify(mask.shape)}`);
  }
  const n = rows * cols;
  const result = out ?? new Uint8Array(n);
  if (result.length !== n) throw new RleError(`output buffer has ${result.length} pixels, mask has ${n}`);
  const value = mask.value ?? 1;
  const columnMajor = mask.order === 'column';
  let pos = 0;
  for (let i = 0; i < mask.counts.length; i++) {
    const run = mask.counts[i];
    if (!Number.isInteger(run) || run < 0) throw new RleError(`run ${i} is not a non-negative integer: ${run}`);
    if (pos + run > n) throw new RleError(`runs add up to more than ${n} pixels (at run ${i})`);
    if (i % 2 === 1) {
      if (!columnMajor) {
        result.fill(value, pos, pos + run);
      } else {
        for (let k = pos; k < pos + run; k++) {
          const c = Math.floor(k / rows);
          const r = k - c * rows;
          result[r * cols + c] = value;
        }
      }
    }
    pos += run;
  }
  if (pos !== n) throw new RleError(`runs add up to ${pos} pixels, mask has ${n}`);
  return result;
}

/** The inverse (row-major), used by tests and to send edited masks back. */
export function encodeRle(mask: ArrayLike<number>, shape: [number, number]): RleMask {
  const counts: number[] = [];
  let current = 0;
  let run = 0;
  for (let i = 0; i < mask.length; i++) {
    const bit = mask[i] ? 1 : 0;
    if (bit === current) {
      run++;
    } else {
      counts.push(run);
      current = bit;
      run = 1;
    }
  }
  counts.push(run);
  return { shape, counts };
}
