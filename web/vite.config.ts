import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Built by scripts/build-web.mjs (npm install / npm start) into web/dist, served by the API at /.
// `npm run dev:web` proxies /api to a vecron started with `npm start` on port 8080.
export default defineConfig({
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 400 },
  server: { proxy: { '/api': 'http://127.0.0.1:8080' } },
});
