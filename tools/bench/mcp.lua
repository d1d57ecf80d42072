-- mcp.lua: wrk script for MCP streamable HTTP (tools/bench/run.sh).
-- setup() opens one MCP session per connection before the load starts (initialize +
-- notifications/initialized through curl; wrk has no per-connection hook, so requests take the
-- sessions in turn: with one request in flight per connection, each session carries about one
-- connection's load). Every request is a tools/call echo (or BENCH_METHOD=tools/list) with a
-- unique JSON-RPC id and message; every response must carry a result with an id we sent and no
-- "error" or "isError": true; for tools/call the echoed text must be that request's message.
-- Failures are counted and printed by done() as "BENCH failures=N".
-- Environment: BENCH_URL (the /mcp URL), BENCH_SESSIONS (sessions to open = connections),
-- BENCH_METHOD (tools/call or tools/list), BENCH_TOOL (tool name, default echo).

local url = os.getenv("BENCH_URL")
local nsessions = tonumber(os.getenv("BENCH_SESSIONS") or "1")
local method = os.getenv("BENCH_METHOD") or "tools/call"
local tool = os.getenv("BENCH_TOOL") or "echo"
local threads = {}
local tcount = 0

-- Open one MCP session with curl; returns its Mcp-Session-Id (or "" when the server has none).
local function open_session()
  local init = '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":' ..
    '"2025-06-18","capabilities":{},"clientInfo":{"name":"wrk","version":"1"}}}'
  local hdr = " -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream'"
  local p = io.popen("curl -s -m 10 -D - -o /dev/null" .. hdr .. " -d '" .. init .. "' " .. url)
  local out = p:read("*a")
  p:close()
  local sid = out:match("[Mm][Cc][Pp]%-[Ss]ession%-[Ii]d: *([^\r\n]+)") or ""
  local sh = sid ~= "" and (" -H 'Mcp-Session-Id: " .. sid .. "'") or ""
  os.execute("curl -s -m 10 -o /dev/null" .. hdr .. sh ..
    " -d '{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}' " .. url)
  return sid
end

function setup(thread)
  tcount = tcount + 1
  local per = nsessions -- run.sh always runs wrk with one thread
  local sids = {}
  for i = 1, per do sids[i] = open_session() end
  thread:set("sids", table.concat(sids, ","))
  thread:set("tid", tcount)
  table.insert(threads, thread)
end

local sessions, nextid, outstanding, turn
failures = 0 -- global: done() reads it from each thread with thread:get("failures")
function init(args)
  sessions = {}
  for s in string.gmatch(sids, "([^,]*),?") do if s ~= "" then table.insert(sessions, s) end end
  if #sessions == 0 then sessions = {""} end
  nextid = tid * 100000000
  outstanding = {}
  failures = 0
  turn = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json, text/event-stream"
end

function request()
  nextid = nextid + 1
  turn = turn % #sessions + 1
  local body
  if method == "tools/list" then
    body = '{"jsonrpc":"2.0","id":' .. nextid .. ',"method":"tools/list","params":{}}'
  else
    body = '{"jsonrpc":"2.0","id":' .. nextid .. ',"method":"tools/call","params":{"name":"' ..
      tool .. '","arguments":{"message":"m' .. nextid .. '"}}}'
  end
  outstanding[nextid] = true
  local h = { ["Content-Type"] = "application/json",
              ["Accept"] = "application/json, text/event-stream" }
  if sessions[turn] ~= "" then h["Mcp-Session-Id"] = sessions[turn] end
  return wrk.format("POST", nil, h, body)
end

function response(status, headers, body)
  local id = tonumber(body:match('"id": *(%d+)') or "")
  local ok = status == 200 and id ~= nil and outstanding[id] and body:find('"result"', 1, true)
    and not body:find('"error"', 1, true) and not body:find('"isError": *true')
  if ok and method ~= "tools/list" then ok = body:find("Echo: m" .. id, 1, true) end
  if id then outstanding[id] = nil end
  if not ok then
    failures = failures + 1
    if failures <= 3 then
      io.stderr:write("BENCH bad response (" .. status .. "): " .. body:sub(1, 300) .. "\n")
    end
  end
end

function done(summary, latency, requests)
  local f = 0
  for _, t in ipairs(threads) do f = f + (t:get("failures") or 0) end
  local e = summary.errors
  io.write(string.format("BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d failures=%d " ..
    "socket_errors=%d\n", summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), f, e.connect + e.read + e.write + e.status + e.timeout))
end
