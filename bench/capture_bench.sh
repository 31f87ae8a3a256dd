#!/usr/bin/env bash
# Capture benchmark: wall time, peak RSS and store bytes per stored value of
# `attnscope capture` on random-weight models with real shapes.
#   bench/capture_bench.sh [SHAPE:TYPE ...]   (default: qwen2.5-0.5b:Q8_0)
# Environment: PROMPT_TOKENS (default 1024), GEN_TOKENS (64), THREADS (physical cores),
# PRECISION (f16), BUILD (build), WORK (/tmp/attnscope-bench).
# Prints one Markdown table row per model, ready for docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
WORK=${WORK:-/tmp/attnscope-bench}
PROMPT_TOKENS=${PROMPT_TOKENS:-1024}
GEN_TOKENS=${GEN_TOKENS:-64}
PRECISION=${PRECISION:-f16}
THREADS=${THREADS:-0}
mkdir -p "$WORK"
[ -x /usr/bin/time ] || { echo "capture_bench: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

# Token ids 0..255 are the byte tokens of the synthetic vocabulary.
ids=$(python3 -c "import random; r=random.Random(1); print(','.join(str(r.randrange(32,127)) for _ in range($PROMPT_TOKENS)))")

echo "| model | weights | prompt + generated | wall s | prefill tok/s | decode tok/s | peak RSS GB | model GB | KV cache GB | RSS - model - KV (MB) | store MB | bytes/value |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for spec in "${@:-qwen2.5-0.5b:Q8_0}"; do
  shape=${spec%%:*}
  type=${spec##*:}
  model="$WORK/$shape-$type.gguf"
  [ -f "$model" ] || "$BUILD/tools/attnscope-synth-model" --shape "$shape" --type "$type" -o "$model" >&2
  run="$WORK/run-$shape-$type"
  rm -rf "$run"
  /usr/bin/time -f "%e %M" -o "$WORK/time.txt" \
    "$BUILD/attnscope" capture -m "$model" --token-ids "$ids" -n "$GEN_TOKENS" --ignore-eos \
      --precision "$PRECISION" -t "$THREADS" -o "$run" -q
  read -r wall rss_kb < "$WORK/time.txt"
  python3 - "$run" "$model" "$wall" "$rss_kb" "$shape" "$type" <<'PY'
import json, os, sys
run, model, wall, rss_kb, shape, typ = sys.argv[1:]
m = json.load(open(os.path.join(run, "manifest.json")))
n = len(m["tokens"]); L = m["attention"]["n_layers"]; H = m["attention"]["n_heads"]
mi = m["model"]
store = sum(os.path.getsize(os.path.join(run, f)) for f in os.listdir(run))
values = L * H * n * (n + 1) / 2
kv = 2 * mi["n_layers"] * n * mi["n_kv_heads"] * mi["head_dim"] * 4  # f32 K and V
model_bytes = os.path.getsize(model)
rss = int(rss_kb) * 1024
t = m["timings"]
gen = n - m["n_prompt"]
print(f"| {shape} | {typ} | {m['n_prompt']} + {gen} | {float(wall):.1f} | {m['n_prompt']/t['prefill_seconds']:.1f} | "
      f"{gen/max(t['decode_seconds'],1e-9):.2f} | {rss/1e9:.2f} | {model_bytes/1e9:.2f} | {kv/1e9:.3f} | "
      f"{(rss-model_bytes-kv)/1e6:.0f} | {store/1e6:.1f} | {store/values:.3f} |")
PY
done
