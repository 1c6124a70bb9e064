#!/usr/bin/env bash
# Benchmarks the full User Status Report (extract, write, count, render, deliver to an outbox)
# with `flowkit run user-status-report --json` against `flowkit sim` running as a separate
# process, and compares it with the official Okta Python SDK counting the same users.
#
#   scripts/bench_report.sh speed          # 100k and 1M users, no rate limit, + Python SDK at 100k
#   scripts/bench_report.sh rate-limited   # 100k users, simulator limited to 6,000 requests/min
#
# Options (after the mode):
#   --sizes "N ..."        user counts for `speed` (default "100000 1000000")
#   --sdk-sizes "N ..."    sizes at which the Python SDK script runs too (default "100000";
#                          "" to skip; at 1M it takes several minutes)
#   --rate-limit PER_MIN   limit for `rate-limited` (default 6000)
#   --users N              users for `rate-limited` (default 100000)
#   --keep DIR             work in DIR and keep it (default: a temporary directory, removed)
#
# The Python SDK (okta==3.4.6) is taken from $OKTA_SDK_PYTHON (a python with `okta`
# installed) or installed into target/bench-venv on first use.
#
# Wall time and peak memory (maximum resident set size) are those of the report process,
# measured by /usr/bin/time; the simulator runs in its own process and is not included.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
mode="${1:-}"
[ -n "$mode" ] && shift
sizes="100000 1000000"
sdk_sizes="100000"
rate_limit=6000
rl_users=100000
keep=""
while [ $# -gt 0 ]; do
    case "$1" in
        --sizes) sizes="$2"; shift 2 ;;
        --sdk-sizes) sdk_sizes="$2"; shift 2 ;;
        --rate-limit) rate_limit="$2"; shift 2 ;;
        --users) rl_users="$2"; shift 2 ;;
        --keep) keep="$2"; shift 2 ;;
        *) echo "bench_report.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
case "$mode" in
    speed|rate-limited) ;;
    *) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
[ -x /usr/bin/time ] || { echo "bench_report.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

echo "building target/release/flowkit ..." >&2
(cd "$root" && cargo build --release --quiet --bin flowkit)
flowkit="$root/target/release/flowkit"

if [ -n "$keep" ]; then
    work="$keep"; mkdir -p "$work"
else
    work="$(mktemp -d)"
fi
sim_pid=""
cleanup() {
    if [ -n "$sim_pid" ]; then kill -TERM "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi
    [ -z "$keep" ] && rm -rf "$work"
}
trap cleanup EXIT

# start_sim LABEL ARGS...: starts `flowkit sim`, sets sim_pid, sim_out, sim_url, sim_token.
start_sim() {
    local label="$1"; shift
    sim_out="$work/$label.sim.out"
    "$flowkit" -q sim "$@" >"$sim_out" 2>"$work/$label.sim.err" &
    sim_pid=$!
    for _ in $(seq 1 100); do
        [ -s "$sim_out" ] && break
        sleep 0.05
    done
    local line
    line="$(head -n 1 "$sim_out")"
    case "$line" in
        "flowkit sim: serving "*) ;;
        *) echo "bench_report.sh: flowkit sim did not start: $(cat "$work/$label.sim.err")" >&2; exit 1 ;;
    esac
    sim_url="$(echo "$line" | awk '{for (i = 1; i < NF; i++) if ($i == "at") print $(i + 1)}')"
    sim_token="$(echo "$line" | awk '{print $NF}')"
}

# stop_sim: stops the simulator; sets sim_pages and sim_429 from its last line.
stop_sim() {
    kill -TERM "$sim_pid"
    wait "$sim_pid" || true
    sim_pid=""
    local last
    last="$(tail -n 1 "$sim_out")"
    sim_pages="$(echo "$last" | sed -n 's/.*: \([0-9]*\) pages,.*/\1/p')"
    sim_429="$(echo "$last" | sed -n 's/.* \([0-9]*\) rate-limited (429).*/\1/p')"
}

# run_report LABEL: runs the full report against the simulator; sets wall, peak_kb, users.
run_report() {
    local label="$1" dir="$work/$1"
    rm -rf "$dir"; mkdir -p "$dir"
    cat >"$dir/config.csv" <<'CSV'
rowId,system.updated,name,value,description
cfg-timezone,1700000000000,timezone,America/New_York,Zone the report's dates are shown in
cfg-recipients,1700000000000,recipients,it@example.com,Who gets the report
cfg-logo,1700000000000,logo,https://example.com/logo.png,Logo on top of the email
cfg-org,1700000000000,org,Benchmark Org,Tenant name in the email
CSV
    "$flowkit" -q tables import Config "$dir/config.csv" --db "$dir/flowkit.db" >/dev/null
    OKTA_CLIENT_ORGURL="$sim_url" OKTA_CLIENT_TOKEN="$sim_token" \
        OKTA_TESTING_TESTINGDISABLEHTTPSCHECK=true \
        FLOWKIT_DB="$dir/flowkit.db" FLOWKIT_MAIL="outbox:$dir/outbox" \
        /usr/bin/time -f "%e %M" -o "$dir/time" \
        "$flowkit" -q run user-status-report --json >"$dir/outcome.json" 2>"$dir/stderr" || {
        echo "bench_report.sh: the report failed:" >&2; cat "$dir/stderr" >&2; exit 1; }
    wall="$(awk '{print $1}' "$dir/time")"
    peak_kb="$(awk '{print $2}' "$dir/time")"
    users="$(grep -o '"users_extracted":[0-9]*' "$dir/outcome.json" | cut -d: -f2)"
    ls "$dir/outbox"/*.eml >/dev/null 2>&1 || { echo "bench_report.sh: no email in the outbox" >&2; exit 1; }
}

sdk_python() {
    if [ -n "${OKTA_SDK_PYTHON:-}" ]; then echo "$OKTA_SDK_PYTHON"; return; fi
    local venv="$root/target/bench-venv"
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import okta' 2>/dev/null; then
        echo "installing okta==3.4.6 into $venv ..." >&2
        python3 -m venv "$venv" >&2 && "$venv/bin/pip" install --quiet okta==3.4.6 >&2
    fi
    echo "$venv/bin/python"
}

# run_sdk: runs the Python SDK script against the simulator; sets sdk_seconds, sdk_users.
run_sdk() {
    local out
    out="$(OKTA_CLIENT_ORGURL="$sim_url" OKTA_CLIENT_TOKEN="$sim_token" \
        OKTA_TESTING_TESTINGDISABLEHTTPSCHECK=true \
        "$(sdk_python)" "$root/scripts/python_sdk_count.py")"
    sdk_seconds="$(echo "$out" | grep -o '"seconds": [0-9.]*' | awk '{print $2}')"
    sdk_users="$(echo "$out" | grep -o '"users": [0-9]*' | awk '{print $2}')"
}

mb() { awk -v kb="$1" 'BEGIN {printf "%.0f", kb / 1024}'; }

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(uname -sr)"
if [ "$mode" = speed ]; then
    printf '%-10s %9s %11s %10s %14s %10s\n' users "wall s" "users/s" "peak MB" "Python SDK s" speedup
    first_peak=""
    for n in $sizes; do
        start_sim "sim-$n" --users "$n"
        run_report "report-$n"
        [ "$users" = "$n" ] || { echo "bench_report.sh: extracted $users users, expected $n" >&2; exit 1; }
        sdk="-"; ratio="-"
        for s in $sdk_sizes; do
            if [ "$s" = "$n" ]; then
                run_sdk
                [ "$sdk_users" = "$n" ] || { echo "bench_report.sh: the SDK counted $sdk_users users" >&2; exit 1; }
                sdk="$sdk_seconds"
                ratio="$(awk -v a="$sdk_seconds" -v b="$wall" 'BEGIN {printf "%.1fx", a / b}')"
            fi
        done
        stop_sim
        printf '%-10s %9s %11s %10s %14s %10s\n' "$n" "$wall" \
            "$(awk -v n="$n" -v w="$wall" 'BEGIN {printf "%.0f", n / w}')" "$(mb "$peak_kb")" "$sdk" "$ratio"
        if [ -z "$first_peak" ]; then
            first_peak="$peak_kb"; first_n="$n"
        else
            echo "  peak memory at $n / at $first_n: $(awk -v a="$peak_kb" -v b="$first_peak" 'BEGIN {printf "%.2f", a / b}')x"
        fi
    done
else
    start_sim "sim-rl" --users "$rl_users" --rate-limit "$rate_limit"
    run_report "report-rl"
    stop_sim
    [ "$users" = "$rl_users" ] || { echo "bench_report.sh: extracted $users users, expected $rl_users" >&2; exit 1; }
    floor="$(awk -v p="$sim_pages" -v l="$rate_limit" 'BEGIN {printf "%.2f", p / (l / 60)}')"
    echo "users $rl_users, limit $rate_limit requests/min, pages $sim_pages"
    echo "floor (pages / allowed requests per second): $floor s"
    echo "achieved (report wall time): $wall s, peak $(mb "$peak_kb") MB"
    echo "floor / achieved: $(awk -v f="$floor" -v w="$wall" 'BEGIN {printf "%.2f", f / w}')"
    echo "429 answers: $sim_429"
fi
