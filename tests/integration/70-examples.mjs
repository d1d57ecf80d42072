// 70-examples: every config in examples/ is valid: `mcplex --validate -c FILE` exits 0 with no
// error lines (the format, Envoy bootstrap or agentgateway-style, is detected from content).
// Tests 10 and 20 also run examples/seed.yaml and examples/envoy-mcp-router.yaml for real.
import fs from "node:fs";
import path from "node:path";
import { assert, test, run, runMcplex, errorLines, EXAMPLES_DIR } from "./lib/harness.mjs";

const files = fs.readdirSync(EXAMPLES_DIR).filter((f) => /\.(ya?ml|json)$/.test(f)).sort();

test("examples/ has the documented configs", () => {
  for (const f of ["default.yaml", "seed.yaml", "envoy-mcp-router.yaml", "envoy-mcp-backend.yaml",
    "weighted.yaml", "envoy-weighted.yaml"]) {
    assert.ok(files.includes(f), `examples/${f} missing`);
  }
});

for (const f of files) {
  test(`examples/${f} is valid`, async () => {
    const r = await runMcplex(["--validate", "-c", path.join(EXAMPLES_DIR, f)]);
    assert.equal(r.signal, null, `crashed: ${r.signal}`);
    assert.equal(r.code, 0, `exit ${r.code}:\n${errorLines(r.stderr).join("\n") || r.stderr}`);
  });
}

await run({ timeout: 60000 });
