/**
 * Loads every image of a stack into the cache, nearest to the current slice first, a few at a time, so that
 * the order follows the reader when they scroll. Progress and failures are reported per stack.
 */
import { Enums, cache, imageLoader } from '@cornerstonejs/core';
import { nextNearest } from './geometry';

export interface PrefetchProgress {
  loaded: number;
  failed: number;
  total: number;
  done: boolean;
  elapsedMs: number;
}

export class Prefetcher {
  private requested: Uint8Array;
  private inFlight = 0;
  private loaded = 0;
  private failed = 0;
  private focus = 0;
  private direction: 1 | -1 = 1;
  private stopped = false;
  private readonly t0 = performance.now();
  readonly failures = new Map<string, unknown>();

  constructor(
    readonly imageIds: string[],
    private readonly onProgress: (p: PrefetchProgress) => void,
    private readonly concurrency = 6,
    /** Returns why a loaded image is unusable (counted as failed), or undefined. */
    private readonly validate?: (imageId: string, image: unknown) => string | undefined,
  ) {
    this.requested = new Uint8Array(imageIds.length);
  }

  start(focus: number): void {
    this.focus = focus;
    // Images already in the cache (a series shown before) count at once.
    this.imageIds.forEach((id, i) => {
      const image = cache.getImageLoadObject(id) ? cache.getImage(id) : undefined;
      if (image) {
        this.requested[i] = 1;
        const problem = this.validate?.(id, image);
        if (problem) {
          this.failed++;
          this.failures.set(id, problem);
        } else {
          this.loaded++;
        }
      }
    });
    this.report();
    this.pump();
  }

  setFocus(index: number): void {
    if (index !== this.focus) this.direction = index > this.focus ? 1 : -1;
    this.focus = index;
  }

  stop(): void {
    this.stopped = true;
  }

  get progress(): PrefetchProgress {
    const total = this.imageIds.length;
    return { loaded: this.loaded, failed: this.failed, total, done: this.loaded + this.failed >= total, elapsedMs: performance.now() - this.t0 };
  }

  private report(): void {
    this.onProgress(this.progress);
  }

  private pump(): void {
    while (!this.stopped && this.inFlight < this.concurrency) {
      const i = nextNearest(this.focus, this.requested, this.direction);
      if (i < 0) return;
      this.requested[i] = 1;
      this.inFlight++;
      const imageId = this.imageIds[i];
      const priority = Math.min(Math.abs(i - this.focus), 1000);
      imageLoader
        .loadAndCacheImage(imageId, { priority, requestType: Enums.RequestType.Prefetch } as never)
        .then(
          (image: unknown) => {
            const problem = this.validate?.(imageId, image);
            if (problem) {
              this.failed++;
              this.failures.set(imageId, problem);
            } else {
              this.loaded++;
            }
          },
          (err: unknown) => {
            this.failed++;
            this.failures.set(imageId, err);
          },
        )
        .finally(() => {
          this.inFlight--;
          this.report();
          this.pump();
        });
    }
  }
}
