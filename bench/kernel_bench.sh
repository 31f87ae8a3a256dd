#!/usr/bin/env bash
# Kernel benchmark tables: runs build-bench/bench/quant_bench once per instruction set this
# CPU supports and prints two Markdown tables (for docs/performance.md) to stdout:
#   decode  - GB/s of weights for one token: Kernels::dot (f32 activations) and dot_q8
#             (activations quantized to 8 bits), per weight type and instruction set;
#   prefill - GFLOP/s of the engine's matmul for 16 and 64 tokens (matmul_rows_q8 for the
#             types with an int8 kernel, matmul_rows otherwise; plus matmul_rows for the
#             int8 types = --f32-activations), per weight type and instruction set.
# quant_bench's own console output goes to stderr as it runs; its JSON is kept in $WORK.
#
# usage: bench/kernel_bench.sh [-h]
# environment:
#   BUILD     build directory with quant_bench (default build-bench), configured with
#               cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DATTNSCOPE_BUILD_BENCH=ON
#               cmake --build build-bench -j2 --target quant_bench
#   ISAS      instruction sets to measure, space-separated (default: every one this CPU
#             supports among "scalar avx2 avx512")
#   MIN_TIME  --benchmark_min_time per benchmark, in seconds (default 0.5; 0.05 for a smoke
#             test). Google Benchmark >= 1.8 wants a unit: MIN_TIME=0.5s
#   REPS      --benchmark_repetitions (default 1; with more, the tables use the medians)
#   FILTER    --benchmark_filter regex for every run (default: everything), e.g.
#             FILTER='/(Q8_0|Q4_K)/' for two types, FILTER='^dot' for the decode table only
#   WORK      where the JSON goes (default /tmp/attnscope-bench)
# A whole run (three instruction sets, all 15 types, 456 benchmarks) took 1.5 minutes at
# MIN_TIME=0.05 on a 2-core machine; the default MIN_TIME=0.5 takes several times longer.
# Pin the CPU frequency and keep the machine otherwise idle for numbers worth publishing.
set -euo pipefail
if [[ ${1:-} == -h || ${1:-} == --help ]]; then sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0; fi
[[ $# -eq 0 ]] || { echo "kernel_bench: no arguments expected (see --help)" >&2; exit 2; }
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
WORK=${WORK:-/tmp/attnscope-bench}
MIN_TIME=${MIN_TIME:-0.5}
REPS=${REPS:-1}
FILTER=${FILTER:-}
bin="$BUILD/bench/quant_bench"
if [[ ! -x $bin ]]; then
  echo "kernel_bench: $bin not found; build it with:" >&2
  echo "  cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release -DATTNSCOPE_BUILD_BENCH=ON && cmake --build $BUILD -j2 --target quant_bench" >&2
  exit 1
fi
command -v python3 >/dev/null || { echo "kernel_bench: needs python3" >&2; exit 1; }
mkdir -p "$WORK"

# The instruction sets this CPU supports: those of the dot benchmarks the binary lists
# (it registers them for every supported one).
supported=$("$bin" --benchmark_list_tests --benchmark_filter='^dot/F32/' |
  awk -F/ '!seen[$3]++ {printf "%s%s", sep, $3; sep=" "}')
[[ -n $supported ]] || { echo "kernel_bench: $bin lists no dot/F32 benchmark" >&2; exit 1; }
ISAS=${ISAS:-$supported}
for isa in $ISAS; do
  [[ " $supported " == *" $isa "* ]] || { echo "kernel_bench: this CPU supports '$supported', not '$isa'" >&2; exit 1; }
done

stamp=$(date +%Y%m%d-%H%M%S)
outs=()
for isa in $ISAS; do
  # One process per instruction set: the matmul benchmarks use the active one
  # (ATTNSCOPE_CPU), and --isas=active limits the dot benchmarks to it too.
  out="$WORK/quant_bench-$stamp-$isa.json"
  args=(--isas=active --benchmark_out="$out" --benchmark_out_format=json
        --benchmark_min_time="$MIN_TIME" --benchmark_repetitions="$REPS")
  if [[ -n $FILTER ]]; then args+=(--benchmark_filter="$FILTER"); fi
  if [[ $REPS -gt 1 ]]; then args+=(--benchmark_report_aggregates_only=true); fi
  echo "kernel_bench: ATTNSCOPE_CPU=$isa $bin ${args[*]}" >&2
  ATTNSCOPE_CPU=$isa "$bin" "${args[@]}" >&2
  outs+=("$out")
done

machine="$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
python3 - "$machine" "${build_type:-?}" "${outs[@]}" <<'PY'
import json, statistics, sys
from collections import defaultdict

machine, build_type = sys.argv[1], sys.argv[2]
vals = defaultdict(list)   # (kind, type, isa, path, tokens, shape) -> [value]
context = None
for path in sys.argv[3:]:
    doc = json.load(open(path))
    context = context or doc["context"]
    for b in doc["benchmarks"]:
        if b.get("error_occurred"):
            print(f"kernel_bench: {b['name']}: {b.get('error_message')}", file=sys.stderr)
            continue
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        name = b.get("run_name", b["name"])
        p = name.split("/")
        if p[0] in ("dot", "dot_q8"):        # dot/TYPE/ISA/SHAPE
            vals[(p[0], p[1], p[2], "", 1, p[3])].append(b["weights_B"] / 1e9)
        elif p[0] == "matmul":               # matmul/TYPE/ISA/PATH/Ntok/SHAPE
            vals[("matmul", p[1], p[2], p[3], int(p[4][:-3]), p[5])].append(b["FLOP"] / 1e9)
        elif p[0] == "quantize_activations": # quantize_activations/ISA/FORMAT/Ntok/COLS
            vals[("quantize", "", p[1], p[2], int(p[3][:-3]), p[4])].append(b["act_B"] / 1e9)
med = {k: statistics.median(v) for k, v in vals.items()}

types = []
for k in med:
    if k[1] and k[1] not in types:
        types.append(k[1])
isas = [i for i in ("scalar", "avx2", "avx512") if any(k[2] == i for k in med)]
shapes = sorted({k[5] for k in med if k[0] != "quantize"}, key=lambda s: int(s.split("x")[0]))
dot_shapes = sorted({k[5] for k in med if k[0].startswith("dot")}, key=lambda s: int(s.split("x")[0]))
mm_shapes = sorted({k[5] for k in med if k[0] == "matmul"}, key=lambda s: int(s.split("x")[0]))
tokens = sorted({k[4] for k in med if k[0] == "matmul"})

def f(v, digits=1):
    return "—" if v is None else f"{v:.{digits}f}"

print(f"Machine: {machine}; attnscope detected ISA: {context.get('attnscope_detected_isa')}; "
      f"attnscope {build_type} build, "
      f"CPU scaling {'on' if context.get('cpu_scaling_enabled') else 'off'}; one thread.")
print()
print("Decode (one token): GB/s of weights read by `Kernels::dot` (f32 activations) and "
      "`dot_q8` (int8 activations, bf16 for BF16 weights; — where the type has no such kernel).")
print()
hdr = ["type", "ISA"] + [f"{path} {s}" for s in dot_shapes for path in ("f32", "int8")]
print("| " + " | ".join(hdr) + " |")
print("|" + "---|" * len(hdr))
for t in types:
    for i in isas:
        cells = []
        for s in dot_shapes:
            cells.append(f(med.get(("dot", t, i, "", 1, s)), 2))
            cells.append(f(med.get(("dot_q8", t, i, "", 1, s)), 2))
        if any(c != "—" for c in cells):
            print(f"| {t} | {i} | " + " | ".join(cells) + " |")
print()
print("Prefill: GFLOP/s of the engine's matmul (`matmul_rows_q8` with int8 activations for "
      "the types that have it, bf16 for BF16, `matmul_rows` with f32 activations otherwise; the "
      "last column: `matmul_rows` for the other types, as `--f32-activations` does), first 256 "
      "rows of each shape.")
print()
hdr = ["type", "ISA", "path"] + [f"{n} tok {s}" for s in mm_shapes for n in tokens]
last = (max(tokens), mm_shapes[0]) if tokens and mm_shapes else None
if last:
    hdr.append(f"f32 act. {last[0]} tok {last[1]}")
print("| " + " | ".join(hdr) + " |")
print("|" + "---|" * len(hdr))
for t in types:
    for i in isas:
        has_q8 = any(k[0] == "matmul" and k[1] == t and k[3] == "q8" for k in med)
        path = "q8" if has_q8 else "f32"
        cells = [f(med.get(("matmul", t, i, path, n, s))) for s in mm_shapes for n in tokens]
        if last:
            cells.append(f(med.get(("matmul", t, i, "f32", last[0], last[1]))) if has_q8 else "—")
        if any(c != "—" for c in cells):
            label = ("bf16" if t == "BF16" else "int8") if has_q8 else "f32"
            print(f"| {t} | {i} | {label} | " + " | ".join(cells) + " |")
q = [(k, v) for k, v in med.items() if k[0] == "quantize"]
if q:
    print()
    print("quantize_activations, GB/s of f32 input: " + "; ".join(
        f"{k[2]} {k[3]} {k[4]} tok × {k[5]}: {v:.2f}"
        for k, v in sorted(q, key=lambda kv: (isas.index(kv[0][2]) if kv[0][2] in isas else 9, kv[0][3], kv[0][4]))))
PY
echo "kernel_bench: raw JSON: ${outs[*]}" >&2
