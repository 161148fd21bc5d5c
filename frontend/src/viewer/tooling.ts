/**
 * Everything the first image does not need, in a chunk of its own that app.ts imports after the first image is
 * drawn: @cornerstonejs/tools (about 45% of the viewer's code), the measurement store and the AI panel.
 */
import type { RenderingEngine } from '@cornerstonejs/core';
import * as tools from '@cornerstonejs/tools';

export { tools };
export { MeasurementStore } from './measurements/store';
export { mountAiPanel } from './ai';

const TOOL_CLASSES = [
  tools.WindowLevelTool,
  tools.PanTool,
  tools.ZoomTool,
  tools.StackScrollTool,
  tools.PlanarRotateTool,
  tools.LengthTool,
  tools.AngleTool,
  tools.EllipticalROITool,
  tools.RectangleROITool,
  tools.ProbeTool,
  tools.ArrowAnnotateTool,
  tools.CrosshairsTool,
];

let started = false;

/**
 * Initialise the tools once. Viewports enabled before this (the first image's) never reached the tools'
 * ELEMENT_ENABLED listener, so they are handed to it here (mouse/wheel listeners, SVG annotation layer).
 */
export function startTools(engine: RenderingEngine): void {
  if (started) return;
  started = true;
  tools.init();
  for (const T of TOOL_CLASSES) tools.addTool(T as never);
  for (const vp of engine.getViewports()) {
    tools.store.addEnabledElement({ detail: { element: vp.element, viewportId: vp.id, renderingEngineId: engine.id } } as never);
  }
}
