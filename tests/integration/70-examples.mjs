// 70-examples: every config in examples/ is valid: `mcplex --validate -c FILE` exits 0 with no
// error lines (the format, Envoy bootstrap or agentgateway-style, is detected from content).
// Tests 10 and 20 also run examples/seed.yaml and examples/envoy-mcp-router.yaml for real.
// The default example's CORS policy lets a browser client (MCP Inspector) send the session
// headers (a preflight, no target started).
import fs from "node:fs";
import path from "node:path";
import {
  assert, test, run, runMcplex, errorLines, EXAMPLES_DIR, freePort, startMcplex, readExample,
} from "./lib/harness.mjs";

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

test("examples/default.yaml: a browser preflight may send the MCP session headers", async () => {
  const port = await freePort();
  const text = readExample("default.yaml").replace("port: 3000", `port: ${port}`);
  assert.ok(text.includes(`port: ${port}`));
  const mx = await startMcplex(text, { port, name: "mcplex-default" });
  const r = await fetch(`http://127.0.0.1:${port}/mcp`, {
    method: "OPTIONS",
    headers: {
      origin: "http://localhost:6274",
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type,mcp-session-id,mcp-protocol-version,last-event-id",
    },
  });
  assert.equal(r.status, 200);
  const allowed = (r.headers.get("access-control-allow-headers") ?? "").toLowerCase();
  for (const h of ["content-type", "mcp-session-id", "mcp-protocol-version", "last-event-id"]) {
    assert.ok(allowed.includes(h), `${h} in '${allowed}'`);
  }
  assert.equal(mx.exitInfo, null);
});

await run({ timeout: 60000 });
