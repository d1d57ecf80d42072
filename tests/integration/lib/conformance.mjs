// conformance.mjs: runs the official MCP conformance suite (@modelcontextprotocol/conformance,
// server mode) from the test process, and reads its results. Runs in the test's node process;
// the suite itself is a tracked child process (killed with everything else by the harness).
//
// conformance 0.1.16 declares node >= 22 and imports fs.globSync (used only by its tier-check
// command). On node 20 it fails at load, so runConformance() uses a patched COPY of its dist
// (research/mcp-protocol.md 7.1) under the test's temp dir, next to a node_modules symlink so its
// imports resolve; node_modules itself is never modified.
import fs from "node:fs";
import path from "node:path";
import {
  TESTS_DIR, TMP, ARTIFACTS, NODE, spawnTracked, stopProcess, sleep, tail,
} from "./harness.mjs";

const DIST = path.join(TESTS_DIR, "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js");

let entry;

// The runnable entry point: the package's own on node >= 22, else the patched copy.
function conformanceEntry() {
  if (entry) return entry;
  const major = Number(process.versions.node.split(".")[0]);
  if (major >= 22) return (entry = DIST);
  const dir = path.join(TMP, "conformance");
  fs.mkdirSync(dir, { recursive: true });
  fs.symlinkSync(path.join(TESTS_DIR, "node_modules"), path.join(dir, "node_modules"));
  const lines = fs.readFileSync(DIST, "utf8").split("\n");
  if (!lines[1].includes("globSync as o,")) {
    throw new Error("conformance dist changed: the node-20 patch does not apply");
  }
  const stub = 'const o=()=>{throw Error("fs.globSync unavailable on node20")};';
  lines[1] = stub + lines[1].replace("globSync as o,", "");
  entry = path.join(dir, "conformance.mjs");
  fs.writeFileSync(entry, lines.join("\n"));
  return entry;
}

// Runs `conformance server --url |url| --suite all` (or --scenario |scenario|), writing results
// under artifacts/<label>/. Resolves the parsed results (see readResults); rejects if the suite
// does not finish within |timeout| ms.
export async function runConformance(url, label, { scenario, timeout = 150000 } = {}) {
  const out = path.join(ARTIFACTS, label);
  fs.rmSync(out, { recursive: true, force: true });
  const args = [conformanceEntry(), "server", "--url", url, "-o", out];
  if (scenario) args.push("--scenario", scenario);
  else args.push("--suite", "all");
  const h = spawnTracked(`conformance-${label}`, NODE, args, { cwd: path.dirname(conformanceEntry()) });
  const done = await Promise.race([h.exited, sleep(timeout).then(() => null)]);
  if (!done) {
    await stopProcess(h);
    throw new Error(`conformance against ${url} did not finish in ${timeout} ms; ` +
      `log ${h.logFile}:\n${tail(h.logFile, 20)}`);
  }
  const results = readResults(out);
  fs.writeFileSync(path.join(ARTIFACTS, `${label}.summary.txt`), summarize(results));
  return results;
}

// Reads <dir>/server-<scenario>-<timestamp>/checks.json into a Map scenario ->
// {ok, checks, failures: [{id, errorMessage}]}; a scenario is ok when no check is FAILURE.
export function readResults(dir) {
  const results = new Map();
  if (!fs.existsSync(dir)) return results;
  for (const ent of fs.readdirSync(dir).sort()) {
    const m = /^server-(.+)-\d{4}-\d\d-\d\dT[\d-]+Z$/.exec(ent);
    const file = path.join(dir, ent, "checks.json");
    if (!m || !fs.existsSync(file)) continue;
    const checks = JSON.parse(fs.readFileSync(file, "utf8"));
    const failures = checks.filter((c) => c.status === "FAILURE")
      .map((c) => ({ id: c.id, errorMessage: c.errorMessage ?? "" }));
    results.set(m[1], { ok: failures.length === 0, checks: checks.length, failures });
  }
  return results;
}

// One line per scenario: ok/FAIL name, and each failed check with its message.
export function summarize(results) {
  const lines = [];
  for (const [name, r] of results) {
    lines.push(`${r.ok ? "ok  " : "FAIL"} ${name}`);
    for (const f of r.failures) {
      lines.push(`       ${f.id}: ${f.errorMessage.replace(/\s+/g, " ").slice(0, 300)}`);
    }
  }
  return `${lines.join("\n")}\n`;
}
