#!/usr/bin/env bash
# run.sh - the side-by-side MCP proxy benchmark (issue 6). One command:
#   tools/bench/run.sh [--quick] [--only LIST] [--sessions N] [--accept-callgrind] [--no-callgrind]
# On loopback, with the same load generator (wrk + mcp.lua; mcpclient.mjs for mcp-hub's legacy
# SSE transport) and the same upstream (fixture/mcpfix, stdio or streamable HTTP), it measures:
#   direct         wrk -> mcpfix http                          (the limit)
#   mcplex-stdio   wrk -> mcplex -> mcpfix stdio (one child per session)
#   mcplex-http    wrk -> mcplex -> mcpfix http
#   nginx          wrk -> nginx (proxy_pass, keepalive upstream) -> mcpfix http
#   mcp-proxy      wrk -> mcp-proxy --server stream -> mcpfix stdio (one shared child)
#   supergateway   wrk -> supergateway --stateful -> mcpfix stdio (one child per session)
#   mcp-hub        mcpclient.mjs sse -> mcp-hub /mcp (legacy SSE) -> mcpfix stdio
# for 1, 8 and 64 connections: req/s, p50, p99, proxy CPU seconds per 1,000 requests and proxy
# peak RSS (VmHWM); then mcplex's memory per idle session (HTTP target), tools/list latency over
# 1, 5 and 20 HTTP targets, and instructions per tools/call under callgrind. Writes
# results/results.md, results/results.tsv, results/bench.png and results/callgrind.txt;
# results/callgrind-baseline.txt is the last accepted callgrind figure (--accept-callgrind
# rewrites it; it is created when missing). Every process listens on 127.0.0.1 only and is stopped
# on exit. Environment: MCPLEX (binary, default build/mcplex, built when missing), BENCH_PORT
# (ports from BENCH_PORT+1 up, default 21100: below the ephemeral range). Not part of the test suite.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RES=$HERE/results
DUR=10
CONNS="1 8 64"
SESSIONS=10000
FANOUT="1 5 20"
CG_K1=200
CG_K2=2200
ONLY="direct mcplex-stdio mcplex-http nginx mcp-proxy supergateway mcp-hub"
ACCEPT_CG=0
DO_CG=1
QUICK=0
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1; DUR=3; SESSIONS=${SESSIONS_SET:-10000}; CG_K1=100; CG_K2=600 ;;
    --only) ONLY=$2; shift ;;
    --sessions) SESSIONS=$2; SESSIONS_SET=$2; shift ;;
    --accept-callgrind) ACCEPT_CG=1 ;;
    --no-callgrind) DO_CG=0 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
MCPLEX=${MCPLEX:-$ROOT/build/mcplex}
PORT=${BENCH_PORT:-21100}
TMP=$(mktemp -d /tmp/mcplex-bench.XXXXXX)
PIDS=()
NODE_SHIM=$ROOT/tests/integration/lib/loopback-shim.cjs

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Stop every process this script started (their whole process groups), then remove the scratch dir.
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true; done
    sleep 0.3
    for p in "${PIDS[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- what the benchmark needs ----
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
missing=()
for pair in wrk:wrk nginx:nginx-light gnuplot:gnuplot-nox valgrind:valgrind curl:curl; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    $SUDO apt-get install -y "${missing[@]}" >&2
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -d "$HERE/node_modules/mcp-hub" ] || (cd "$HERE" && npm ci --no-audit --no-fund >&2)
make -s -C "$HERE/fixture" >&2
FIX=$HERE/fixture/mcpfix
# mcplex's worker threads (default: one per CPU). One worker compares like with like against
# nginx's one worker process; BENCH_CONCURRENCY=2 measures the threaded build.
MX_ARGS=(--concurrency "${BENCH_CONCURRENCY:-1}")
if [ ! -x "$MCPLEX" ]; then
    log "building mcplex"
    cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=Release >&2
    cmake --build "$ROOT/build" -j"$(nproc)" --target mcplex >&2
    MCPLEX=$ROOT/build/mcplex
fi
mkdir -p "$RES"
HZ=$(getconf CLK_TCK)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- process helpers ----
# next_port: take a fresh port number into $PORT.
next_port() { PORT=$((PORT + 1)); }

# start NAME CMD...: run CMD in its own process group, log to $TMP/NAME.log; sets LASTPID.
start() {
    local name=$1; shift
    setsid "$@" >"$TMP/$name.log" 2>&1 </dev/null &
    LASTPID=$!
    LASTLOG=$TMP/$name.log
    PIDS+=("$LASTPID")
}

# stop PID: stop one started process group and wait for it.
stop() {
    kill -TERM -- "-$1" 2>/dev/null || true
    local i
    for i in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# wait_port PORT [SECONDS]: wait until 127.0.0.1:PORT accepts connections.
wait_port() {
    local i
    for i in $(seq $((${2:-15} * 10))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    log "nothing listens on 127.0.0.1:$1; the last process started said:"
    tail -20 "$LASTLOG" >&2
    return 1
}

# cpu_ticks PID...: utime+stime of the processes, in clock ticks.
cpu_ticks() {
    local t=0 p
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] && t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
    done
    echo "$t"
}

# mem_kb FIELD PID...: sum of /proc/PID/status FIELD (VmHWM, VmRSS) in kB.
mem_kb() {
    local f=$1 t=0 p v; shift
    for p in "$@"; do
        v=$(awk -v f="$f:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null || true)
        t=$((t + ${v:-0}))
    done
    echo "$t"
}

# mcplex_config FILE PORT ADMINPORT TARGET...: write an agentgateway-style file; TARGET is
# name=stdio or name=http://... .
mcplex_config() {
    local f=$1 port=$2 admin=$3 t; shift 3
    {
        echo "config: {adminAddr: \"127.0.0.1:$admin\"}"
        echo "binds:"
        echo "- port: $port"
        echo "  listeners:"
        echo "  - routes:"
        echo "    - backends:"
        echo "      - mcp:"
        echo "          targets:"
        for t in "$@"; do
            if [ "${t#*=}" = stdio ]; then
                echo "          - {name: ${t%%=*}, stdio: {cmd: \"$FIX\", args: [stdio]}}"
            else
                echo "          - {name: ${t%%=*}, mcp: {host: \"${t#*=}\"}}"
            fi
        done
    } >"$f"
}

NO_RESULT="BENCH requests=0 duration_us=1 p50_us=0 p99_us=0 failures=-1 socket_errors=0"

# load SETUP URL CONNS SECS TOOL [METHOD]: one load point; echoes the BENCH line.
load() {
    local setup=$1 url=$2 c=$3 secs=$4 tool=$5 method=${6:-tools/call}
    if [ "$setup" = mcp-hub ]; then
        timeout $((secs + 30)) taskset -c 1 node "$HERE/mcpclient.mjs" sse "$url" "$c" "$secs" "$tool" \
            2>>"$TMP/client.err" | grep '^BENCH' || echo "$NO_RESULT"
    else
        BENCH_URL=$url BENCH_SESSIONS=$c BENCH_TOOL=$tool BENCH_METHOD=$method \
            timeout $((secs + 60)) taskset -c 1 wrk -t1 -c"$c" -d"${secs}s" --timeout 5s \
            -s "$HERE/mcp.lua" "$url" 2>>"$TMP/client.err" | grep '^BENCH' || echo "$NO_RESULT"
    fi
}

# field NAME LINE: the value of NAME=... in a BENCH line.
field() { sed -n "s/.*\b$1=\([-0-9]*\).*/\1/p" <<<"$2"; }

# rate LINE: requests per second of a BENCH line.
rate() {
    awk -v r="$(field requests "$1")" -v d="$(field duration_us "$1")" 'BEGIN {printf "%.0f", r * 1e6 / d}'
}

TSV=$RES/results.tsv
printf 'setup\tconns\treq_s\tp50_us\tp99_us\tcpu_s_per_1k\tpeak_rss_mb\tfailures\n' >"$TSV"

# measure SETUP URL TOOL PID...: the 1/8/64-connection points against one started proxy.
measure() {
    local setup=$1 url=$2 tool=$3; shift 3
    local c line c0 c1 req dur rps cpu hwm fails
    for c in $CONNS; do
        c0=$(cpu_ticks "$@")
        line=$(load "$setup" "$url" "$c" "$DUR" "$tool")
        c1=$(cpu_ticks "$@")
        req=$(field requests "$line")
        fails=$(( $(field failures "$line") + $(field socket_errors "$line") ))
        rps=$(rate "$line")
        cpu=$(awk -v t=$((c1 - c0)) -v h="$HZ" -v r="$req" 'BEGIN {printf "%.3f", r ? t / h / r * 1000 : 0}')
        if [ $# -gt 0 ]; then
            hwm=$(awk -v k="$(mem_kb VmHWM "$@")" 'BEGIN {printf "%.1f", k / 1024}')
        else
            hwm="-"
            cpu="-"
        fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$setup" "$c" "$rps" "$(field p50_us "$line")" \
            "$(field p99_us "$line")" "$cpu" "$hwm" "$fails" >>"$TSV"
        log "$setup c=$c: $rps req/s p50 $(field p50_us "$line") us p99 $(field p99_us "$line") us" \
            "cpu/1k $cpu s rss $hwm MB failures $fails"
    done
}

want() { [[ " $ONLY " == *" $1 "* ]]; }

# ---- the upstream every HTTP setup shares ----
next_port; FPORT=$PORT
start fixture "$FIX" http "$FPORT"
FIXPID=$LASTPID
wait_port "$FPORT"
FURL=http://127.0.0.1:$FPORT/mcp

if want direct; then
    log "direct"
    measure direct "$FURL" echo
fi

if want mcplex-stdio; then
    log "mcplex-stdio"
    next_port; P=$PORT; next_port; A=$PORT
    mcplex_config "$TMP/mx-stdio.yaml" "$P" "$A" fix=stdio
    start mcplex-stdio "$MCPLEX" "${MX_ARGS[@]}" -f "$TMP/mx-stdio.yaml"
    MPID=$LASTPID; wait_port "$P"
    measure mcplex-stdio "http://127.0.0.1:$P/mcp" echo "$MPID"
    stop "$MPID"
fi

if want mcplex-http; then
    log "mcplex-http"
    next_port; P=$PORT; next_port; A=$PORT
    mcplex_config "$TMP/mx-http.yaml" "$P" "$A" "fix=$FURL"
    start mcplex-http "$MCPLEX" "${MX_ARGS[@]}" -f "$TMP/mx-http.yaml"
    MPID=$LASTPID; wait_port "$P"
    measure mcplex-http "http://127.0.0.1:$P/mcp" echo "$MPID"
    stop "$MPID"
fi

if want nginx; then
    log "nginx"
    next_port; P=$PORT
    mkdir -p "$TMP/nginx"
    cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    upstream fixture { server 127.0.0.1:$FPORT; keepalive 128; }
    server {
        listen 127.0.0.1:$P;
        location / {
            proxy_pass http://fixture;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
EOF
    start nginx "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf"
    NPID=$LASTPID; wait_port "$P"
    WPID=""
    for i in $(seq 50); do
        WPID=$(pgrep -P "$NPID" | head -1 || true)
        [ -n "$WPID" ] && break
        sleep 0.1
    done
    measure nginx "http://127.0.0.1:$P/mcp" echo "$WPID"
    stop "$NPID"
fi

if want mcp-proxy; then
    log "mcp-proxy"
    next_port; P=$PORT
    start mcp-proxy node "$HERE/node_modules/mcp-proxy/dist/bin/mcp-proxy.mjs" --host 127.0.0.1 --port "$P" \
        --server stream -- "$FIX" stdio
    XPID=$LASTPID; wait_port "$P" 30
    measure mcp-proxy "http://127.0.0.1:$P/mcp" echo "$XPID"
    stop "$XPID"
fi

if want supergateway; then
    log "supergateway"
    next_port; P=$PORT
    start supergateway node -r "$NODE_SHIM" "$HERE/node_modules/supergateway/dist/index.js" \
        --stdio "$FIX stdio" --outputTransport streamableHttp --stateful --port "$P" --logLevel none
    XPID=$LASTPID; wait_port "$P" 30
    measure supergateway "http://127.0.0.1:$P/mcp" echo "$XPID"
    stop "$XPID"
fi

if want mcp-hub; then
    log "mcp-hub"
    next_port; P=$PORT
    H=$TMP/hub
    mkdir -p "$H/data/mcp-hub/cache" "$H/state" "$H/config" "$H/home"
    printf '{"mcpServers": {"fix": {"command": "%s", "args": ["stdio"]}}}\n' "$FIX" >"$H/hub.json"
    printf '{"registry":{"version":"bench","generatedAt":0,"totalServers":1,"servers":[%s]},%s\n' \
        '{"id":"x","name":"x","description":"x","tags":[]}' \
        '"lastFetchedAt":'"$(date +%s%3N)"',"serverDocumentation":{}}' >"$H/data/mcp-hub/cache/registry.json"
    start mcp-hub env HOME="$H/home" XDG_DATA_HOME="$H/data" XDG_STATE_HOME="$H/state" \
        XDG_CONFIG_HOME="$H/config" \
        node -r "$NODE_SHIM" "$HERE/node_modules/mcp-hub/dist/cli.js" --port "$P" --config "$H/hub.json"
    XPID=$LASTPID; wait_port "$P" 30
    for i in $(seq 100); do
        curl -s "http://127.0.0.1:$P/api/health" | grep -q '"state":"ready"' && break
        sleep 0.2
    done
    measure mcp-hub "http://127.0.0.1:$P/mcp" fix__echo "$XPID"
    stop "$XPID"
fi

# ---- memory per idle session (HTTP target) ----
SESS_LINE=""
if want mcplex-http; then
    log "mcplex: $SESSIONS idle sessions"
    next_port; P=$PORT; next_port; A=$PORT
    mcplex_config "$TMP/mx-sess.yaml" "$P" "$A" "fix=$FURL"
    start mcplex-sessions "$MCPLEX" "${MX_ARGS[@]}" -f "$TMP/mx-sess.yaml"
    MPID=$LASTPID; wait_port "$P"
    node "$HERE/mcpclient.mjs" sessions "http://127.0.0.1:$P/mcp" 100 4 >/dev/null
    sleep 0.5
    r0=$(mem_kb VmRSS "$MPID")
    out=$(timeout 300 node "$HERE/mcpclient.mjs" sessions "http://127.0.0.1:$P/mcp" "$SESSIONS" 4 || true)
    sleep 0.5
    r1=$(mem_kb VmRSS "$MPID")
    SESS_LINE=$(awk -v a="$r0" -v b="$r1" -v n="$SESSIONS" -v o="$out" 'BEGIN {
        printf "%d sessions (%s): RSS %.1f MB -> %.1f MB, %.2f KB per session",
            n, o, a / 1024, b / 1024, (b - a) / n }')
    log "$SESS_LINE"
    stop "$MPID"
fi

# ---- tools/list fan-out over N HTTP targets ----
FAN_TSV=$RES/fanout.tsv
printf 'targets\tp50_us\tp99_us\treq_s\tfailures\n' >"$FAN_TSV"
if want mcplex-http; then
    line=$(load direct "$FURL" 1 "$DUR" echo tools/list)
    printf '%s\t%s\t%s\t%s\t%s\n' direct "$(field p50_us "$line")" "$(field p99_us "$line")" \
        "$(rate "$line")" "$(field failures "$line")" >>"$FAN_TSV"
    for n in $FANOUT; do
        log "mcplex tools/list over $n targets"
        targets=(); fpids=()
        for i in $(seq "$n"); do
            next_port; fp=$PORT
            start "fan$i" "$FIX" http "$fp"
            fpids+=("$LASTPID"); targets+=("t$i=http://127.0.0.1:$fp/mcp")
            wait_port "$fp"
        done
        next_port; P=$PORT; next_port; A=$PORT
        mcplex_config "$TMP/mx-fan.yaml" "$P" "$A" "${targets[@]}"
        start "mcplex-fan$n" "$MCPLEX" "${MX_ARGS[@]}" -f "$TMP/mx-fan.yaml"
        MPID=$LASTPID; wait_port "$P"
        line=$(load mcplex-fan "http://127.0.0.1:$P/mcp" 1 "$DUR" echo tools/list)
        printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$(field p50_us "$line")" "$(field p99_us "$line")" \
            "$(rate "$line")" "$(field failures "$line")" >>"$FAN_TSV"
        stop "$MPID"
        for p in "${fpids[@]}"; do stop "$p"; done
    done
fi

# ---- instructions per tools/call under callgrind ----
# cg_run TARGET K: set CG_IR to the instructions of mcplex serving K tools/call (plus start-up).
cg_run() {
    local target=$1 k=$2 P A
    next_port; P=$PORT; next_port; A=$PORT
    mcplex_config "$TMP/mx-cg.yaml" "$P" "$A" "$target"
    rm -f "$TMP"/cg.out.*
    start "callgrind-$k" valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out.%p" \
        "$MCPLEX" "${MX_ARGS[@]}" -f "$TMP/mx-cg.yaml"
    local vp=$LASTPID
    wait_port "$P" 60
    node "$HERE/mcpclient.mjs" calls "http://127.0.0.1:$P/mcp" "$k" >>"$TMP/client.err"
    stop "$vp"
    # the parent's file only (a stdio target's fixture children are not traced: no --trace-children)
    CG_IR=$(awk '/^(summary|totals):/ {print $2; exit}' "$(ls -S "$TMP"/cg.out.* | head -1)")
}
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || COMMIT="$COMMIT+dirty-src"
CG_TXT=$RES/callgrind.txt
CG_HTTP=""; CG_STDIO=""
if [ "$DO_CG" = 1 ] && want mcplex-http; then
    log "callgrind (HTTP target, then stdio target)"
    cg_run "fix=$FURL" "$CG_K1"; a=$CG_IR; cg_run "fix=$FURL" "$CG_K2"; b=$CG_IR
    CG_HTTP=$(( (b - a) / (CG_K2 - CG_K1) ))
    cg_run fix=stdio "$CG_K1"; a=$CG_IR; cg_run fix=stdio "$CG_K2"; b=$CG_IR
    CG_STDIO=$(( (b - a) / (CG_K2 - CG_K1) ))
    {
        echo "# instructions (callgrind Ir, mcplex process only) per tools/call echo, one session, one"
        echo "# connection, sequential; (Ir(${CG_K2} calls) - Ir(${CG_K1} calls)) / $((CG_K2 - CG_K1))"
        echo "commit $COMMIT"
        echo "date $(date -u +%Y-%m-%dT%H:%MZ)"
        echo "http_target $CG_HTTP"
        echo "stdio_target $CG_STDIO"
    } >"$CG_TXT"
    if [ "$ACCEPT_CG" = 1 ] || [ ! -f "$RES/callgrind-baseline.txt" ]; then
        cp "$CG_TXT" "$RES/callgrind-baseline.txt"
    fi
    log "callgrind: $CG_HTTP instructions per tools/call (HTTP target), $CG_STDIO (stdio target)"
fi

# ---- report ----
cpu_model=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
{
    echo "# mcplex benchmark results"
    echo
    echo "Machine: $(nproc) CPUs, $cpu_model; kernel $(uname -r); $(date -u '+%Y-%m-%d %H:%M UTC');"
    echo "load average at the start $LOAD0, at the end $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "(other work on the machine distorts every number when these are well above 0);"
    echo "mcplex $COMMIT (+dirty-src: with uncommitted changes in src/), one worker thread."
    echo "Run: \`tools/bench/run.sh$([ $QUICK = 1 ] && echo ' --quick')\` ($DUR s per point," \
        "wrk 1 thread pinned to CPU 1)."
    echo "Upstream: tools/bench/fixture/mcpfix (tools/call echo). CPU and RSS are the proxy's own process"
    echo "(nginx: its worker), without the upstream."
    echo
    echo "| setup | conns | req/s | p50 (us) | p99 (us) | CPU s / 1k req | peak RSS (MB) | failures |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    tail -n +2 "$TSV" | awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n",
        $1, $2, $3, $4, $5, $6, $7, $8}'
    echo
    if [ -n "$SESS_LINE" ]; then
        echo "Idle sessions, mcplex with one HTTP target: $SESS_LINE."
        echo
    fi
    if [ "$(wc -l <"$FAN_TSV")" -gt 1 ]; then
        echo "tools/list through mcplex over N fixture HTTP targets (1 connection; \"direct\" = one fixture):"
        echo
        echo "| targets | p50 (us) | p99 (us) | req/s | failures |"
        echo "|---|---:|---:|---:|---:|"
        tail -n +2 "$FAN_TSV" | awk -F'\t' '{printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5}'
        echo
    fi
    if [ -n "$CG_HTTP" ]; then
        echo "callgrind: $CG_HTTP instructions per tools/call (HTTP target), $CG_STDIO (stdio target);"
        echo "accepted baseline: $(awk '/^http_target/ {h=$2} /^stdio_target/ {s=$2} END {print h " / " s}' \
            "$RES/callgrind-baseline.txt") (results/callgrind-baseline.txt)."
        echo
    fi
    echo "![throughput and p99](bench.png)"
} >"$RES/results.md"

# ---- plot: req/s and p99 per setup, one bar per connection count ----
awk -F'\t' 'NR > 1 {k = $1; if (!(k in seen)) {seen[k] = 1; order[++n] = k}
    rps[k, $2] = $3; p99[k, $2] = $4 >= 0 ? $5 / 1000 : 0}
    END {for (i = 1; i <= n; i++) {k = order[i]; printf "%s %s %s %s %s %s %s\n", k,
        rps[k, 1] + 0, rps[k, 8] + 0, rps[k, 64] + 0, p99[k, 1] + 0, p99[k, 8] + 0, p99[k, 64] + 0}}' \
    "$TSV" >"$TMP/plot.dat"
gnuplot <<EOF
set terminal pngcairo size 1200,900 font "sans,10"
set output "$RES/bench.png"
set multiplot layout 2,1 title "MCP tools/call through proxies, $(nproc) CPUs, \
$(date -u +%Y-%m-%d), load average $LOAD0 (tools/bench/run.sh)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set xtics noenhanced
set key top right
set logscale y
set ylabel "requests / s (log)"
plot "$TMP/plot.dat" using 2:xtic(1) title "1 conn", '' using 3 title "8 conns", '' using 4 title "64 conns"
set ylabel "p99 latency, ms (log)"
plot "$TMP/plot.dat" using 5:xtic(1) title "1 conn", '' using 6 title "8 conns", '' using 7 title "64 conns"
unset multiplot
EOF
log "wrote $RES/results.md, results.tsv, fanout.tsv, bench.png"
cat "$RES/results.md"
