/**
 * The image loader can "succeed" with damaged data: a JPEG 2000 codec that logs an error and returns nothing,
 * or a frame shorter than the image. Checking the decoded size against the DICOM header catches both, so the
 * viewer can say so instead of drawing black.
 */
import { DicomJson, Tag, num } from '../api/dicomjson';

export interface DecodedLike {
  rows?: number;
  columns?: number;
  getPixelData?: () => ArrayLike<number> | undefined;
}

/** Why the decoded image does not match its header, or undefined when it does. */
export function imageProblem(image: DecodedLike | undefined, header: DicomJson | undefined): string | undefined {
  if (!image) return 'no image was produced';
  const rows = num(header, Tag.Rows) ?? image.rows ?? 0;
  const cols = num(header, Tag.Columns) ?? image.columns ?? 0;
  const samples = num(header, Tag.SamplesPerPixel) ?? 1;
  let length = 0;
  try {
    length = image.getPixelData?.()?.length ?? 0;
  } catch {
    length = 0;
  }
  if (!image.rows || !image.columns) return 'the decoder returned an empty image';
  // Colour images may come back as RGB or RGBA.
  if (length < rows * cols * Math.min(samples, 3)) {
    return `the decoder returned ${length} values for a ${cols}×${rows}${samples > 1 ? ` × ${samples}` : ''} image`;
  }
  return undefined;
}

/** Transfer syntax names for messages. */
const TS_NAMES: Record<string, string> = {
  '1.2.840.10008.1.2': 'Implicit VR Little Endian',
  '1.2.840.10008.1.2.1': 'Explicit VR Little Endian',
  '1.2.840.10008.1.2.2': 'Explicit VR Big Endian',
  '1.2.840.10008.1.2.4.50': 'JPEG Baseline',
  '1.2.840.10008.1.2.4.51': 'JPEG Extended',
  '1.2.840.10008.1.2.4.57': 'JPEG Lossless',
  '1.2.840.10008.1.2.4.70': 'JPEG Lossless SV1',
  '1.2.840.10008.1.2.4.80': 'JPEG-LS Lossless',
  '1.2.840.10008.1.2.4.81': 'JPEG-LS Near-lossless',
  '1.2.840.10008.1.2.4.90': 'JPEG 2000 Lossless',
  '1.2.840.10008.1.2.4.91': 'JPEG 2000',
  '1.2.840.10008.1.2.5': 'RLE Lossless',
};

export function transferSyntaxName(uid: string | undefined): string {
  return uid ? (TS_NAMES[uid] ?? uid) : 'unknown transfer syntax';
}

