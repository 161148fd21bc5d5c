/**
 * Cornerstone3D start-up, done once per page: rendering core, the DICOM image loader (wadors: and wadouri:),
 * the streaming volume loader for MPR. The tools (@cornerstonejs/tools) are not here: they are a separate chunk,
 * loaded after the first image is drawn (tooling.ts).
 */
import {
  cornerstoneStreamingImageVolumeLoader,
  imageLoadPoolManager,
  imageRetrievalPoolManager,
  init as coreInit,
  Enums,
  getShouldUseCPURendering,
  setUseCPURendering,
  getWebWorkerManager,
  volumeLoader,
} from '@cornerstonejs/core';
import { init as loaderInit } from '@cornerstonejs/dicom-image-loader';
import { registerFrameLoader } from './frameLoader';

export interface RenderSupport {
  webgl: boolean;
  reason?: string;
}

let started: RenderSupport | undefined;

/** Loading knobs, overridable from the URL for benchmarking (`?lb.workers=2&lb.prefetch=12`). */
export function tuning(name: string, fallback: number): number {
  const v = Number(new URLSearchParams(location.search).get(`lb.${name}`));
  return Number.isFinite(v) && v > 0 ? v : fallback;
}


/**
 * The DICOM image loader's init, except that its decode workers start only when a frame first needs one
 * (`ensureDecodeWorkers`): uncompressed frames never do (frameLoader.ts), so opening a CT starts no worker and
 * compiles no codec while the first image is on its way. (init registers the workers eagerly, and calling it
 * again later would purge the image cache and registered metadata, hence this interception.)
 */
let pendingWorker: Parameters<ReturnType<typeof getWebWorkerManager>['registerWorker']> | undefined;
function initLoaderWithLazyWorkers(options: Parameters<typeof loaderInit>[0]): void {
  const manager = getWebWorkerManager();
  const register = manager.registerWorker;
  manager.registerWorker = ((...args: Parameters<typeof register>) => {
    if (args[0] === 'dicomImageLoader') pendingWorker = args;
    else register.apply(manager, args);
  }) as typeof register;
  try {
    loaderInit(options);
  } finally {
    manager.registerWorker = register;
  }
}

export function ensureDecodeWorkers(): void {
  if (!pendingWorker) return;
  const args = pendingWorker;
  pendingWorker = undefined;
  getWebWorkerManager().registerWorker(...args);
}

export function startCornerstone(): RenderSupport {
  if (started) return started;
  // Cornerstone probes WebGL itself and falls back to CPU rendering (stacks only) where it is missing;
  // a second probe of our own would cost another GL context on software renderers.
  coreInit();
  const support: RenderSupport = getShouldUseCPURendering()
    ? { webgl: false, reason: 'This browser offers no WebGL context (hardware acceleration off or blocked).' }
    : { webgl: true };
  // At least two decode workers (one can stall behind a large compressed frame), more where cores allow.
  const cores = navigator.hardwareConcurrency || 2;
  initLoaderWithLazyWorkers({ maxWebWorkers: tuning('workers', Math.max(2, Math.min(4, cores - 1))) });
  // Our wadors: loader: no decode worker for native frames, no byte-by-byte multipart scan (frameLoader.ts).
  registerFrameLoader(ensureDecodeWorkers);
  volumeLoader.registerUnknownVolumeLoader(cornerstoneStreamingImageVolumeLoader as never);
  volumeLoader.registerVolumeLoader('cornerstoneStreamingImageVolume', cornerstoneStreamingImageVolumeLoader as never);

  // Keep the network queue short so our priorities (current slice first, then outward) decide the order,
  // instead of the browser's own FIFO of pending requests.
  imageRetrievalPoolManager.setMaxSimultaneousRequests(Enums.RequestType.Interaction, 6);
  imageRetrievalPoolManager.setMaxSimultaneousRequests(Enums.RequestType.Prefetch, tuning('retrieve', 10));
  imageLoadPoolManager.setMaxSimultaneousRequests(Enums.RequestType.Prefetch, 12);

  started = support;
  return support;
}

/**
 * Draw the page's first image with Cornerstone's CPU renderer. Its WebGL path first creates the GL contexts and
 * compiles the image shaders, which on a software GL (SwiftShader, VMs, thin clients) takes 0.2-0.3 s before
 * the first pixel; the CPU renderer draws a 512x512 slice in a few ms. Everything after the first image (stacks,
 * MPR, segmentation overlays) renders with WebGL: `gpuFromNowOn` switches the default back and each slot moves
 * its CPU viewport over (Slot.moveToGpu). Off with `?lb.gpufirst=1`, and where there is no WebGL at all.
 */
export function cpuForFirstImage(support: RenderSupport): boolean {
  if (!support.webgl || tuning('gpufirst', 0)) return false;
  setUseCPURendering(true, false);
  return true;
}

/** New viewports render with WebGL again (see cpuForFirstImage); true when this changed anything. */
export function gpuFromNowOn(): boolean {
  if (!started?.webgl || !getShouldUseCPURendering()) return false;
  setUseCPURendering(false, false);
  return true;
}

