/** The four text corners over a viewport. Every value is set with textContent (DICOM strings are data). */
import { DicomJson, Tag, formatDate, num, nums, str } from '../api/dicomjson';
import { h } from '../util/dom';

export interface OverlayState {
  patient?: DicomJson; // study-level QIDO answer
  instance?: DicomJson;
  index: number;
  total: number;
  window?: { width: number; center: number };
  zoom?: number;
  orientation?: string; // MPR plane name
  invert?: boolean;
}

export class Overlay {
  readonly el: HTMLElement;
  private corners: Record<'tl' | 'tr' | 'bl' | 'br', HTMLElement>;

  constructor() {
    const c = (pos: string) => h('div', { class: `corner ${pos}`, 'data-corner': pos });
    this.corners = { tl: c('tl'), tr: c('tr'), bl: c('bl'), br: c('br') };
    this.el = h('div', { class: 'overlay', 'aria-hidden': 'true' }, this.corners.tl, this.corners.tr, this.corners.bl, this.corners.br);
  }

  private static lines(el: HTMLElement, lines: (string | undefined)[]): void {
    const text = lines.filter((l) => l !== undefined && l !== '').join('\n');
    if (el.textContent !== text) el.textContent = text;
  }

  update(s: OverlayState): void {
    const p = s.patient ?? s.instance;
    const i = s.instance;
    const sexAge = [str(i, Tag.PatientSex), formatDate(str(i ?? p, Tag.PatientBirthDate))].filter(Boolean).join(' ');
    Overlay.lines(this.corners.tl, [str(p, Tag.PatientName), str(p, Tag.PatientID) && `ID: ${str(p, Tag.PatientID)}`, sexAge]);
    const seriesNo = num(i, Tag.SeriesNumber);
    Overlay.lines(this.corners.tr, [
      str(p, Tag.StudyDescription),
      formatDate(str(p, Tag.StudyDate)),
      [seriesNo !== undefined ? `Se: ${seriesNo}` : '', str(i, Tag.SeriesDescription)].filter(Boolean).join(' '),
      str(i, Tag.Modality),
    ]);
    const loc = num(i, Tag.SliceLocation) ?? nums(i, Tag.ImagePositionPatient)[2];
    const thick = num(i, Tag.SliceThickness);
    Overlay.lines(this.corners.bl, [
      s.orientation,
      s.total ? `Im: ${s.index + 1} / ${s.total}` : undefined,
      loc !== undefined && !s.orientation ? `Loc: ${loc.toFixed(2)} mm` : undefined,
      thick !== undefined && !s.orientation ? `Thick: ${thick.toFixed(2)} mm` : undefined,
    ]);
    Overlay.lines(this.corners.br, [
      s.window ? `W: ${Math.round(s.window.width)} L: ${Math.round(s.window.center)}${s.invert ? ' (inv)' : ''}` : undefined,
      s.zoom !== undefined ? `Zoom: ${(s.zoom * 100).toFixed(0)}%` : undefined,
    ]);
  }
}
