// Copy the exact dist files the pages import from node_modules into frontend/vendor/,
// which Django serves at /static/vendor/. No bundler: pages load these through an
// import map. Run after `npm ci`:  npm run vendor
//
// frontend/vendor/ is git-ignored and rebuilt from scratch on every run, so a file
// dropped from this list does not linger.
import { cpSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const modules = join(root, "node_modules");
const target = join(root, "vendor");

// [source under node_modules, destination under vendor]
const FILES = [
  // Keep the dist names: the module ends with `//# sourceMappingURL=leaflet-src.esm.js.map`,
  // and Django's manifest storage (collectstatic in production) fails on a map it cannot find.
  ["leaflet/dist/leaflet-src.esm.js", "leaflet/leaflet-src.esm.js"],
  ["leaflet/dist/leaflet-src.esm.js.map", "leaflet/leaflet-src.esm.js.map"],
  ["leaflet/dist/leaflet.css", "leaflet/leaflet.css"],
  ["leaflet/dist/images", "leaflet/images"],
  ["leaflet/LICENSE", "leaflet/LICENSE"],
  // Preact, its hooks and htm in one 13 KB ES module.
  ["htm/preact/standalone.module.js", "preact-htm/standalone.module.js"],
  ["htm/LICENSE", "preact-htm/LICENSE"],
  // The driver app's signature pad (ES module; its source map travels with it, as Leaflet's).
  ["signature_pad/dist/signature_pad.js", "signature_pad/signature_pad.js"],
  ["signature_pad/dist/signature_pad.js.map", "signature_pad/signature_pad.js.map"],
  ["signature_pad/LICENSE", "signature_pad/LICENSE"],
  // Chart.js's ES module build: the entry, its shared chunk (imported relatively) and
  // its one dependency, @kurkle/color (a bare import, mapped in the reports page's
  // import map). Maps are kept for the same reason as Leaflet's.
  ["chart.js/dist/chart.js", "chart.js/chart.js"],
  ["chart.js/dist/chart.js.map", "chart.js/chart.js.map"],
  ["chart.js/dist/chunks/index.js", "chart.js/chunks/index.js"],
  ["chart.js/dist/chunks/index.js.map", "chart.js/chunks/index.js.map"],
  ["chart.js/LICENSE.md", "chart.js/LICENSE.md"],
  ["@kurkle/color/dist/color.esm.js", "kurkle-color/color.esm.js"],
  ["@kurkle/color/LICENSE.md", "kurkle-color/LICENSE.md"],
];

const missing = FILES.filter(([src]) => !existsSync(join(modules, src)));
if (missing.length) {
  console.error(`vendor: missing ${missing.map(([src]) => src).join(", ")}; run \`npm ci\` in frontend/ first.`);
  process.exit(1);
}

rmSync(target, { recursive: true, force: true });
for (const [src, dest] of FILES) {
  const to = join(target, dest);
  mkdirSync(dirname(to), { recursive: true });
  cpSync(join(modules, src), to, { recursive: true });
  console.log(`vendor: ${src} -> vendor/${dest}`);
}
