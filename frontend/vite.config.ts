/// <reference types="vitest/config" />
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

/**
 * On /viewer/... pages, start downloading the viewer chunk (Cornerstone3D, ~1.2 MB gzipped) while the HTML is
 * still being parsed, instead of after the entry script has run: a tiny inline script adds a
 * <link rel=modulepreload> for it (the study list never fetches it).
 */
function preloadViewerChunk(): Plugin {
  return {
    name: 'lightbox-preload-viewer-chunk',
    apply: 'build',
    transformIndexHtml: {
      order: 'post',
      handler(html, ctx) {
        const chunk = Object.values(ctx.bundle ?? {}).find((c) => c.type === 'chunk' && c.facadeModuleId?.endsWith('/src/viewer/app.ts'));
        if (!chunk) throw new Error('preloadViewerChunk: no chunk for src/viewer/app.ts');
        const href = `/${chunk.fileName}`;
        const script = `<script>if(/^\\/viewer\\//.test(location.pathname)){var l=document.createElement('link');l.rel='modulepreload';l.href=${JSON.stringify(href)};document.head.appendChild(l)}</script>`;
        return html.replace('</title>', `</title>\n    ${script}`);
      },
    },
  };
}

// The Django server the dev server forwards API, DICOMweb and websocket calls to.
const backend = process.env.LIGHTBOX_BACKEND ?? 'http://127.0.0.1:8010';

export default defineConfig({
  base: '/',
  plugins: [preloadViewerChunk()],
  resolve: {
    // Only vtk.js's XML mesh reader/writer use it, and Lightbox loads no meshes: see src/stubs/xmlbuilder2.ts.
    alias: { xmlbuilder2: fileURLToPath(new URL('./src/stubs/xmlbuilder2.ts', import.meta.url)) },
  },
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 5000,
  },
  worker: { format: 'es' },
  optimizeDeps: {
    // The loader and metadata packages must not be pre-bundled (two copies of @cornerstonejs/metadata
    // lose registered instances); the loader's Emscripten codecs must be, in nested form.
    exclude: ['@cornerstonejs/dicom-image-loader', '@cornerstonejs/metadata'],
    include: [
      'dicom-parser',
      '@cornerstonejs/dicom-image-loader > @cornerstonejs/codec-openjpeg/decodewasmjs',
      '@cornerstonejs/dicom-image-loader > @cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs',
      '@cornerstonejs/dicom-image-loader > @cornerstonejs/codec-charls/decodewasmjs',
      '@cornerstonejs/dicom-image-loader > @cornerstonejs/codec-openjph/wasmjs',
    ],
  },
  server: {
    port: 5173,
    proxy: {
      '/dicomweb': backend,
      '/api': backend,
      '/accounts': backend,
      '/ws': { target: backend.replace(/^http/, 'ws'), ws: true },
    },
  },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
  },
});
