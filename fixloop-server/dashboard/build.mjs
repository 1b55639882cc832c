// Compiles src/*.ts with the pinned tsc and copies the JavaScript into assets/, which the server embeds.
// `node build.mjs --check` compiles into a scratch folder and fails when assets/ differs (CI runs it).
//
// The sources import the generated contract types from fixloop-contract/typescript by path, so tsc's root is the
// repository and its output for src/ lands in build/fixloop-server/dashboard/src/; the contract file compiles
// to an empty module, which is not copied (the imports are `import type` and vanish).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const check = process.argv.includes("--check");
const outDir = mkdtempSync(join(tmpdir(), "fixloop-dashboard-"));
try {
  const tsc = join(here, "node_modules", "typescript", "bin", "tsc");
  execFileSync(process.execPath, [tsc, "-p", here, "--outDir", outDir], { stdio: "inherit" });
  const compiled = join(outDir, "fixloop-server", "dashboard", "src");
  const assets = join(here, "assets");
  const stale = [];
  for (const file of readdirSync(compiled).filter((name) => name.endsWith(".js")).sort()) {
    const fresh = readFileSync(join(compiled, file), "utf8");
    const target = join(assets, file);
    const committed = existsSync(target) ? readFileSync(target, "utf8") : null;
    if (committed === fresh) continue;
    if (check) stale.push(file);
    else writeFileSync(target, fresh);
  }
  for (const file of readdirSync(assets).filter((name) => name.endsWith(".js"))) {
    if (!existsSync(join(compiled, file))) stale.push(`${file} (no source)`);
  }
  if (stale.length > 0) {
    console.error(`assets/ is stale: ${stale.join(", ")}; run \`npm run build\` in fixloop-server/dashboard and commit`);
    process.exit(1);
  }
  console.log(check ? "assets/ matches the sources" : "assets/ rebuilt");
} finally {
  rmSync(outDir, { recursive: true, force: true });
}
