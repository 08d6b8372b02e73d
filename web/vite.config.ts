// Vite: `npm run build` writes the UI to dist/ (the CMake build passes --outDir <build dir>/web);
// `npm run dev` serves it with hot reload and forwards the API to a running `doppel serve`
// (DOPPEL_SERVER, default http://127.0.0.1:8080).
import { defineConfig } from 'vite';

const api = process.env.DOPPEL_SERVER ?? 'http://127.0.0.1:8080';
const apiPaths = ['/models', '/digitaltwins', '/query', '/import', '/ingest', '/write', '/history',
  '/mappings', '/sync', '/scenarios', '/scenario-comparison', '/keys', '/healthz', '/metrics',
  '/openapi.json'];

export default defineConfig({
  base: '/',
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1500, sourcemap: false },
  server: {
    proxy: Object.fromEntries([
      ...apiPaths.map((p) => [p, { target: api }]),
      ['/events', { target: api, ws: true }],
    ]),
  },
});
