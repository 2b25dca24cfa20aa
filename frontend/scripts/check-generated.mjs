// Fails when src/api/schema.d.ts is not what openapi-typescript generates from the committed
// api/openapi.json (run `npm run gen` and commit the result).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "urumi-schema-"));
try {
  const out = join(dir, "schema.d.ts");
  execFileSync(
    process.execPath,
    [join(root, "node_modules/openapi-typescript/bin/cli.js"), join(root, "../api/openapi.json"), "-o", out],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  const committed = readFileSync(join(root, "src/api/schema.d.ts"), "utf8");
  if (readFileSync(out, "utf8") !== committed) {
    console.error("src/api/schema.d.ts is stale against api/openapi.json: run `npm run gen` in frontend/ and commit it");
    process.exit(1);
  }
  console.log("src/api/schema.d.ts matches api/openapi.json");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
