/**
 * multipart/related answers of WADO-RS frame requests, split without scanning the pixel bytes: each part's
 * head is a few hundred bytes, and the archive gives every part a Content-Length. Parts without one are found by
 * searching for the boundary with the native byte search (`Uint8Array.indexOf`), not a JS loop per byte.
 */

export interface Part {
  contentType: string;
  data: Uint8Array;
}

export class MultipartError extends Error {
  constructor(message: string) {
    super(`Invalid multipart answer: ${message}`);
    this.name = 'MultipartError';
  }
}

/** A parameter of a media type (`boundary`, `transfer-syntax`, `type`), unquoted; '' when absent. */
export function mediaParam(contentType: string, name: string): string {
  for (const p of contentType.split(';').slice(1)) {
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    if (p.slice(0, eq).trim().toLowerCase() === name) return p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
  }
  return '';
}

const CR = 13;
const LF = 10;

function ascii(bytes: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

function startsWithAt(bytes: Uint8Array, token: Uint8Array, at: number): boolean {
  if (at < 0 || at + token.length > bytes.length) return false;
  for (let i = 0; i < token.length; i++) if (bytes[at + i] !== token[i]) return false;
  return true;
}

function indexOfToken(bytes: Uint8Array, token: Uint8Array, from: number): number {
  let i = from;
  for (;;) {
    i = bytes.indexOf(token[0], i);
    if (i < 0 || i + token.length > bytes.length) return -1;
    if (startsWithAt(bytes, token, i)) return i;
    i++;
  }
}

const HEAD_LIMIT = 16384;

/** Split a multipart body into its parts. A body that is not multipart is one part of `contentType`. */
export function splitMultipart(contentType: string, body: ArrayBuffer | Uint8Array): Part[] {
  const bytes = body instanceof Uint8Array ? body : new Uint8Array(body);
  if (!/^multipart\//i.test(contentType.trim())) return [{ contentType, data: bytes }];
  const boundary = mediaParam(contentType, 'boundary');
  if (!boundary) throw new MultipartError('no boundary');
  const dash = new Uint8Array([...`--${boundary}`].map((c) => c.charCodeAt(0)));
  const delimiter = new Uint8Array([CR, LF, ...dash]);
  let pos = indexOfToken(bytes, dash, 0);
  if (pos < 0) throw new MultipartError('boundary not found');
  const parts: Part[] = [];
  for (;;) {
    pos += dash.length;
    if (bytes[pos] === 45 && bytes[pos + 1] === 45) return parts; // "--": the closing delimiter
    // Skip transport padding and the line break after the boundary.
    while (pos < bytes.length && bytes[pos] !== LF) pos++;
    pos++;
    // Part head: header lines up to an empty line (none at all when the part starts with CRLF).
    let headEnd = -1;
    let dataStart = -1;
    if (bytes[pos] === CR && bytes[pos + 1] === LF) {
      headEnd = pos;
      dataStart = pos + 2;
    } else {
      const limit = Math.min(bytes.length - 3, pos + HEAD_LIMIT);
      for (let i = pos; i < limit; i++) {
        if (bytes[i] === CR && bytes[i + 1] === LF && bytes[i + 2] === CR && bytes[i + 3] === LF) {
          headEnd = i;
          dataStart = i + 4;
          break;
        }
      }
    }
    if (headEnd < 0) throw new MultipartError('part head not terminated');
    const headers = new Map<string, string>();
    for (const line of ascii(bytes, pos, Math.max(pos, headEnd)).split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const length = headers.has('content-length') ? Number(headers.get('content-length')) : NaN;
    let dataEnd: number;
    if (Number.isInteger(length) && length >= 0 && startsWithAt(bytes, delimiter, dataStart + length)) {
      dataEnd = dataStart + length;
    } else {
      dataEnd = indexOfToken(bytes, delimiter, dataStart);
      if (dataEnd < 0) throw new MultipartError('closing boundary not found');
    }
    parts.push({ contentType: headers.get('content-type') ?? 'application/octet-stream', data: bytes.subarray(dataStart, dataEnd) });
    pos = dataEnd + 2; // at "--boundary"
  }
}

const SYNTAX_BY_TYPE: Record<string, string> = {
  'image/jpeg': '1.2.840.10008.1.2.4.50',
  'image/x-dicom-rle': '1.2.840.10008.1.2.5',
  'image/x-jls': '1.2.840.10008.1.2.4.80',
  'image/jls': '1.2.840.10008.1.2.4.80',
  'image/jll': '1.2.840.10008.1.2.4.70',
  'image/jp2': '1.2.840.10008.1.2.4.90',
  'image/jpx': '1.2.840.10008.1.2.4.92',
  'image/jxl': '1.2.840.10008.1.2.4.110',
  'image/jphc': '3.2.840.10008.1.2.4.96',
};

/**
 * The transfer syntax of a frame part: its `transfer-syntax=` parameter, else the one its media type implies,
 * else Implicit VR Little Endian (the default for application/octet-stream, as Cornerstone's loader assumes).
 */
export function partTransferSyntax(contentType: string): string {
  const explicit = mediaParam(contentType, 'transfer-syntax');
  if (explicit && explicit !== '*') return explicit;
  const type = contentType.split(';')[0].trim().toLowerCase();
  return SYNTAX_BY_TYPE[type] ?? '1.2.840.10008.1.2';
}
