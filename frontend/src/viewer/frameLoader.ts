/**
 * Cornerstone's `wadors:` image loader, replaced by one that keeps the same image IDs, metadata and cache but
 * spends far less of the main thread per frame:
 *
 * - frames come through `fetch` and `splitMultipart` (the part length is read from its head; Cornerstone's own
 *   loader scans every byte of every 512 KiB frame for the boundary, in JavaScript);
 * - uncompressed little-endian greyscale frames (what the archive stores for the demo CT and most modalities)
 *   are turned into images right here: a typed-array view, the modality rescale, min/max. No decode worker is
 *   started for them and no pixel buffer is copied to and from one;
 * - every other frame (JPEG, JPEG-LS, JPEG 2000, RLE, big endian, colour, palette, anything with a LUT
 *   sequence) goes to Cornerstone's `createImage`, which decodes it in its web workers as before;
 * - requests that ask for more than a stack image (a volume's target buffer, streaming or byte-range retrieval)
 *   go to Cornerstone's loader unchanged.
 *
 * The first image's frame may already have been requested by the entry chunk (api/frames.ts); it is used.
 */
import { Enums, Types, canRenderFloatTextures, imageLoader, imageRetrievalPoolManager, metaData, utilities } from '@cornerstonejs/core';
import { createImage, getImageFrame, postProcessDecodedPixels, wadors } from '@cornerstonejs/dicom-image-loader';
import { FetchedFrame, fetchFrames, takeEarlyFrame } from '../api/frames';

const NATIVE_LITTLE_ENDIAN = new Set(['1.2.840.10008.1.2', '1.2.840.10008.1.2.1']);

/** How many frames were made into images on the main thread, and how many went to Cornerstone's decoders. */
export const loaderStats = { direct: 0, decoder: 0, delegated: 0, early: 0 };

interface LoadOptions {
  priority?: number;
  requestType?: Enums.RequestType;
  additionalDetails?: Record<string, unknown>;
  targetBuffer?: unknown;
  retrieveOptions?: { rangeIndex?: number; streaming?: boolean; urlArguments?: string; framesPath?: string };
  loader?: unknown;
  preScale?: { enabled?: boolean };
  useRGBA?: boolean;
  [k: string]: unknown;
}

/** Rescale parameters as Cornerstone's loader derives them (getScalingParameters, not exported by the package). */
function scalingParameters(imageId: string): Record<string, unknown> | undefined {
  const lut = (metaData.get('modalityLutModule', imageId) ?? {}) as { rescaleSlope?: number; rescaleIntercept?: number };
  const series = (metaData.get('generalSeriesModule', imageId) ?? {}) as { modality?: string };
  const scaling = (metaData.get('scalingModule', imageId) ?? {}) as { suvbw?: number; DoseGridScaling?: number; DoseSummation?: unknown; DoseType?: unknown; DoseUnit?: unknown };
  const slope = lut.rescaleSlope ?? 1;
  const intercept = lut.rescaleIntercept ?? 0;
  const pt = series.modality === 'PT' && typeof scaling.suvbw === 'number' && !Number.isNaN(scaling.suvbw);
  const dose = series.modality === 'RTDOSE' && typeof scaling.DoseGridScaling === 'number' && !Number.isNaN(scaling.DoseGridScaling);
  if (slope === 1 && intercept === 0 && !pt && !dose) return undefined;
  return {
    rescaleSlope: slope,
    rescaleIntercept: intercept,
    modality: series.modality,
    ...(pt ? { suvbw: scaling.suvbw } : {}),
    ...(dose ? { doseGridScaling: scaling.DoseGridScaling, doseSummation: scaling.DoseSummation, doseType: scaling.DoseType, doseUnit: scaling.DoseUnit } : {}),
  };
}

interface PixelModule {
  samplesPerPixel?: number;
  photometricInterpretation?: string;
  bitsAllocated?: number;
}

/** Can this frame become an image without a decoder? (Greyscale, 8 or 16 bits, native little endian, no LUT sequences.) */
export function directlyUsable(transferSyntax: string, pixel: PixelModule | undefined, hasLutSequence: boolean): boolean {
  if (!NATIVE_LITTLE_ENDIAN.has(transferSyntax) || !pixel || hasLutSequence) return false;
  if ((pixel.samplesPerPixel ?? 1) !== 1) return false;
  if (pixel.photometricInterpretation !== 'MONOCHROME1' && pixel.photometricInterpretation !== 'MONOCHROME2') return false;
  return pixel.bitsAllocated === 8 || pixel.bitsAllocated === 16;
}

const has = (seq: unknown) => Array.isArray(seq) && seq.length > 0;

async function imageFromFrame(imageId: string, frame: FetchedFrame, options: LoadOptions, t0: number): Promise<Types.IImage> {
  const pixel = metaData.get('imagePixelModule', imageId) as PixelModule | undefined;
  const voi = (metaData.get('voiLutModule', imageId) ?? {}) as { windowCenter?: number[]; windowWidth?: number[]; voiLUTFunction?: string[] | string; voiLutFunction?: string; voiLUTSequence?: unknown[] };
  const lut = (metaData.get('modalityLutModule', imageId) ?? {}) as { rescaleSlope?: number; rescaleIntercept?: number; modalityLUTSequence?: unknown[] };
  let image: Types.IImage;
  if (!directlyUsable(frame.transferSyntax, pixel, has(voi.voiLUTSequence) || has(lut.modalityLUTSequence))) {
    loaderStats.decoder++;
    ensureWorkers();
    image = (await createImage(imageId, frame.data as never, frame.transferSyntax, options as never)) as unknown as Types.IImage;
  } else {
    loaderStats.direct++;
    image = directImage(imageId, frame, voi, lut);
  }
  const extra = image as unknown as { loadTimeInMS?: number; transferSyntaxUID?: string; imageQualityStatus?: number };
  extra.loadTimeInMS = performance.now() - t0;
  extra.transferSyntaxUID = frame.transferSyntax;
  extra.imageQualityStatus = Enums.ImageQualityStatus.FULL_RESOLUTION;
  return image;
}

/** The image object Cornerstone's createImage builds for a greyscale frame, made on the main thread. */
function directImage(
  imageId: string,
  frame: FetchedFrame,
  voi: { windowCenter?: number[]; windowWidth?: number[]; voiLUTFunction?: string[] | string; voiLutFunction?: string },
  lut: { rescaleSlope?: number; rescaleIntercept?: number },
): Types.IImage {
  const imageFrame = getImageFrame(imageId) as unknown as Record<string, unknown> & { rows: number; columns: number; pixelData: ArrayLike<number> & { byteLength: number; constructor: { name: string } }; smallestPixelValue: number; largestPixelValue: number; preScale?: unknown; decodeTimeInMS?: number; photometricInterpretation: string };
  const scaling = scalingParameters(imageId);
  const options = { preScale: scaling ? { enabled: true, scalingParameters: scaling } : { enabled: false }, allowFloatRendering: canRenderFloatTextures() };
  // What the decode worker does for native data (decodeLittleEndian, then the same postProcessDecodedPixels:
  // sign extension, modality rescale into the smallest fitting typed array, min/max), without the worker.
  const data = frame.data;
  const bits = imageFrame.bitsAllocated as number;
  const expected = imageFrame.rows * imageFrame.columns * (bits / 8);
  if (data.byteLength < expected) throw new Error(`The frame holds ${data.byteLength} bytes, ${expected} expected`);
  if (bits === 16) {
    // A view needs an even offset; a frame at an odd one is copied once.
    const aligned = data.byteOffset % 2 ? data.slice(0, expected) : data;
    imageFrame.pixelData = (imageFrame.pixelRepresentation === 1 ? new Int16Array(aligned.buffer, aligned.byteOffset, expected / 2) : new Uint16Array(aligned.buffer, aligned.byteOffset, expected / 2)) as never;
  } else {
    imageFrame.pixelData = data.subarray(0, expected) as never;
  }
  const decoded = postProcessDecodedPixels(imageFrame as never, options as never, Date.now(), {} as never) as unknown as typeof imageFrame;
  const f = decoded;
  const plane = (metaData.get('imagePlaneModule', imageId) ?? {}) as { columnPixelSpacing?: number; rowPixelSpacing?: number };
  const calibration = metaData.get('calibrationModule', imageId) ?? {};
  const voxelManager = utilities.VoxelManager.createImageVoxelManager({ scalarData: f.pixelData as never, width: f.columns, height: f.rows, numberOfComponents: 1 });
  const fn = (Array.isArray(voi.voiLUTFunction) ? voi.voiLUTFunction[0] : voi.voiLUTFunction) || voi.voiLutFunction || undefined;
  let windowCenter = voi.windowCenter?.[0];
  let windowWidth = voi.windowWidth?.[0];
  if (windowCenter === undefined || windowWidth === undefined) {
    const wl = utilities.windowLevel.toWindowLevel(f.smallestPixelValue, f.largestPixelValue);
    windowCenter = wl.windowCenter;
    windowWidth = wl.windowWidth;
  }
  return {
    imageId,
    dataType: f.pixelData.constructor.name,
    color: false,
    calibration,
    columnPixelSpacing: plane.columnPixelSpacing,
    columns: f.columns,
    height: f.rows,
    preScale: f.preScale,
    intercept: lut.rescaleIntercept ? lut.rescaleIntercept : 0,
    slope: lut.rescaleSlope ? lut.rescaleSlope : 1,
    invert: f.photometricInterpretation === 'MONOCHROME1',
    minPixelValue: f.smallestPixelValue,
    maxPixelValue: f.largestPixelValue,
    rowPixelSpacing: plane.rowPixelSpacing,
    rows: f.rows,
    sizeInBytes: f.pixelData.byteLength,
    width: f.columns,
    windowCenter,
    windowWidth,
    voiLUTFunction: fn,
    decodeTimeInMS: f.decodeTimeInMS,
    floatPixelData: undefined,
    imageFrame: f,
    voxelManager,
    rgba: false,
    getPixelData: () => f.pixelData,
    getCanvas: undefined,
    numberOfComponents: 1,
  } as unknown as Types.IImage;
}

/** Requests the loader leaves to Cornerstone's own (volume target buffers, streaming, byte ranges). */
function needsCornerstoneLoader(options: LoadOptions): boolean {
  const r = options.retrieveOptions;
  return !!options.targetBuffer || !!options.loader || !!(r && (r.rangeIndex !== undefined || r.streaming || r.urlArguments || r.framesPath));
}

let registered = false;

let ensureWorkers: () => void = () => undefined;

/** `beforeDecoder` is called before any frame goes to Cornerstone's decode workers (they start on first use). */
export function registerFrameLoader(beforeDecoder: () => void = () => undefined): void {
  ensureWorkers = beforeDecoder;
  if (registered) return;
  registered = true;
  const cornerstoneLoader = wadors.loadImage as unknown as (imageId: string, options?: LoadOptions) => Types.IImageLoadObject;
  imageLoader.registerImageLoader('wadors', ((imageId: string, options: LoadOptions = {}) => {
    if (needsCornerstoneLoader(options)) {
      loaderStats.delegated++;
      ensureWorkers();
      return cornerstoneLoader(imageId, options);
    }
    const url = imageId.slice('wadors:'.length);
    const t0 = performance.now();
    let resolve!: (i: Types.IImage) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<Types.IImage>((a, b) => {
      resolve = a;
      reject = b;
    });
    const run = () => {
      const early = takeEarlyFrame(url);
      if (early) loaderStats.early++;
      const work = (early ?? fetchFrames(url)).then((frames) => {
        if (!frames.length) throw new Error('The archive sent no frame');
        return imageFromFrame(imageId, frames[0], options, t0);
      });
      work.then(resolve, reject);
      return work.catch(() => undefined);
    };
    // The pool orders requests by type and priority (the slice on screen before prefetch).
    imageRetrievalPoolManager.addRequest(run, options.requestType ?? Enums.RequestType.Interaction, options.additionalDetails ?? { imageId }, options.priority ?? 5);
    return { promise, cancelFn: undefined };
  }) as never);
}
