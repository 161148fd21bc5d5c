/**
 * Stand-in for the `xmlbuilder2` package. vtk.js's XML readers and writers import it, and Cornerstone's core
 * pulls one of them in for VTK XML mesh files (`cache/classes/Mesh.js`), which Lightbox never loads. The real
 * package (with its DOM implementation and js-yaml) was about 560 KB of the viewer chunk, all parsed and
 * evaluated before the first image. Aliased in vite.config.ts; calling it says so instead of failing obscurely.
 */
export function create(): never {
  throw new Error('VTK XML files are not supported in Lightbox (xmlbuilder2 is not bundled)');
}
export default { create };
