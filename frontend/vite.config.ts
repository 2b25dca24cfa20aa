/// <reference types="vitest/config" />
// The dashboard is served by urumi-api at /dashboard/ (api.dashboard_dir = frontend/dist), so
// it is built with that base. `npm run dev` serves it with hot reload and proxies the API
// (URUMI_URL, default http://127.0.0.1:8080) so it stays same-origin.
import tailwindcss from "@tailwindcss/vite";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const api = process.env.URUMI_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  base: "/dashboard/",
  plugins: [react(), tailwindcss()],
  server: {
    proxy: {
      "/api": { target: api, changeOrigin: false },
    },
  },
  build: { sourcemap: false },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
