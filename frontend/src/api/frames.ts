/**
 * WADO-RS frame requests as plain `fetch` calls, split with `splitMultipart`. No Cornerstone here: the entry
 * chunk uses it to ask for the first image while the viewer's code is still downloading, and the viewer's image
 * loader (viewer/frameLoader.ts) picks that answer up instead of asking again.
 */
import { HttpError } from './http';
import { partTransferSyntax, splitMultipart } from './multipart';

/** As Cornerstone's loader asks: any transfer syntax, sent as stored (no transcoding on the server). */
export const FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*';

export interface FetchedFrame {
  contentType: string;
  transferSyntax: string;
  data: Uint8Array;
}

export async function fetchFrames(url: string, signal?: AbortSignal): Promise<FetchedFrame[]> {
  let res: Response;
  try {
    res = await fetch(url, { headers: { Accept: FRAME_ACCEPT }, credentials: 'same-origin', signal });
  } catch {
    throw new HttpError(0, 'The image could not be fetched: the connection to the server was lost.');
  }
  if (!res.ok) throw new HttpError(res.status, `The image could not be fetched (HTTP ${res.status}).`);
  const contentType = res.headers.get('Content-Type') ?? 'application/octet-stream';
  const parts = splitMultipart(contentType, await res.arrayBuffer());
  return parts.map((p) => ({ contentType: p.contentType, transferSyntax: partTransferSyntax(p.contentType), data: p.data }));
}

const early = new Map<string, Promise<FetchedFrame[]>>();

/** Start a frame request now (before the viewer's code is there); the loader takes it with `takeEarlyFrame`. */
export function requestFrameEarly(url: string): void {
  if (early.has(url)) return;
  const p = fetchFrames(url);
  p.catch(() => undefined);
  early.set(url, p);
}

/** The answer of an early request for `url`, once (a second call asks the network again). */
export function takeEarlyFrame(url: string): Promise<FetchedFrame[]> | undefined {
  const p = early.get(url);
  early.delete(url);
  return p;
}
