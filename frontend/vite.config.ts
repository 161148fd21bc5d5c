/// <reference types="vitest/config" />
import { defineConfig } from 'vite';

// The Django server the dev server forwards API, DICOMweb and websocket calls to.
const backend = process.env.LIGHTBOX_BACKEND ?? 'http://127.0.0.1:8010';

export default defineConfig({
  base: '/',
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
