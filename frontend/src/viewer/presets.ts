/** Window/level presets (width, center in HU) and the VOI helpers around them. */
export interface WindowPreset {
  id: string;
  label: string;
  width: number;
  center: number;
  key: string; // keyboard shortcut
}

export const CT_PRESETS: WindowPreset[] = [
  { id: 'lung', label: 'Lung', width: 1500, center: -600, key: '1' },
  { id: 'mediastinum', label: 'Mediastinum', width: 350, center: 50, key: '2' },
  { id: 'bone', label: 'Bone', width: 2000, center: 500, key: '3' },
  { id: 'brain', label: 'Brain', width: 80, center: 40, key: '4' },
  { id: 'abdomen', label: 'Abdomen', width: 400, center: 40, key: '5' },
];

export function voiRange(width: number, center: number): { lower: number; upper: number } {
  return { lower: center - width / 2, upper: center + width / 2 };
}

export function windowFromRange(r: { lower: number; upper: number }): { width: number; center: number } {
  return { width: r.upper - r.lower, center: (r.upper + r.lower) / 2 };
}
