#!/usr/bin/env bash
# End-to-end benchmark: whole processes of attnscope (capture ON and OFF) and, when the peers
# chroot is there, llama.cpp and Hugging Face transformers, on random-weight models with
# real shapes. Prints Markdown tables for docs/performance.md on stdout, progress on stderr,
# and every raw measurement as JSON lines into the work directory.
#
# usage: bench/capture_bench.sh [options] [SHAPE:TYPE ...]     (default: qwen2.5-0.5b:Q8_0)
#   SHAPE:TYPE         a model written by build/tools/attnscope-synth-model --shape SHAPE
#                      --type TYPE (cached as WORK/SHAPE-TYPE.gguf), e.g. qwen2.5-0.5b:Q8_0
#                      llama-3.2-1b:Q4_K_M llama-3-8b:Q4_K_M (see attnscope-synth-model --help)
#   --prompt-tokens L  comma-separated prompt lengths (default 128,512,2048; env PROMPT_TOKENS)
#   --gen-tokens G     tokens to generate, EOS ignored (default 64; env GEN_TOKENS)
#   --reps R           repetitions of each whole-process run; tables show medians (default 3;
#                      env REPS). llama-bench gets -r R.
#   --threads T        threads for every tool (default: physical cores; env THREADS)
#   --ctx auto|model|N context size for every tool: auto = prompt + generated (default),
#                      model = each tool's default (the model's: llama.cpp then allocates its
#                      whole KV cache up front), or a number
#   --precision P      capture's stored precision: f16 (default; env PRECISION), f32, u8
#   --tools LIST       comma-separated, from capture,generate,llama-bench,llama-plain,hf
#                      (default: capture,generate,llama-bench,llama-plain; the llama ones are
#                      skipped with a message when the peers chroot is missing; hf is opt-in:
#                      slow to load and memory-hungry, it is skipped when its estimated memory
#                      exceeds MemAvailable)
#   --hf-reps R        repetitions of the transformers run (default 1)
#   --hf-load L        what transformers loads: safetensors (default: a Hugging Face directory
#                      made once from the GGUF by transformers' own GGUF loader, the way its
#                      users load models) or gguf (the GGUF file itself: ~19 s slower to
#                      load on the 0.5B shape, and its float32 dequantization makes loading,
#                      not generating, the peak of memory)
#   --no-warmup        skip the unrecorded warm-up run of each tool per model (by default
#                      each tool runs once at the first prompt length before the measured
#                      runs, so that cold caches do not weigh on the first length only)
#   --build DIR        build directory with attnscope and tools/attnscope-synth-model
#                      (default build; env BUILD)
#   --work DIR         models, prompts, runs and results (default /tmp/attnscope-bench; env WORK)
#   --peers-root DIR   the peers chroot (default $HOME/.cache/attnscope-peers/sid)
#   --timeout S        kill a run after S seconds (default 7200)
#   --peer-env VAR=VAL environment for the peer processes (repeatable), e.g.
#                      --peer-env OMP_WAIT_POLICY=passive: Debian's llama.cpp is built with
#                      OpenMP, whose spinning threads slow it down many times over when other
#                      processes share the cores (not needed on an idle machine)
#
# What runs, per model and prompt length N (prompt = N random printable bytes; the synthetic
# vocabulary has no merges, so byte b is token b and every tool sees the same N tokens, no BOS):
#   attnscope capture   build/attnscope capture -m M --token-ids IDS --no-bos -n G --ignore-eos
#                       -t T -c CTX --precision P -o RUN -q --overwrite
#                       (timings from RUN/manifest.json; store = bytes of RUN)
#   attnscope generate  build/attnscope generate -m M --prompt-file P.txt --no-bos -n G
#                       --ignore-eos -t T -c CTX (P.txt is checked with `attnscope tokenize`
#                       to give exactly IDS; timings from its stderr statistics)
#   llama.cpp plain     llama-completion -m M -f P.txt -n G -t T -c CTX --ignore-eos -no-cnv
#                       --temp 0 < /dev/null (inside the chroot; timings from its perf print,
#                       whose prompt token count is checked against N)
#   llama-bench         llama-bench -m M -p N -n G -t T -r R -o json (pp and tg tokens/s)
#   transformers        bench/hf_attention_bench.py: bf16, eager attention,
#                       generate(output_attentions=True); the model is the GGUF's weights,
#                       converted once into the chroot's staging directory (hf-SHAPE-TYPE/) by
#                       transformers' GGUF loader (see --hf-load)
# Wall time and peak RSS of every whole process come from /usr/bin/time -f "%e %M".
# Decode tokens/s = forward passes of one token per second (llama.cpp and attnscope generate
# make G - 1 of them, capture G: it also feeds the last token for its attention row).
# Peers: ../shared/peers/setup.sh builds the chroot; files are staged (hard links) into
# PEERS_ROOT/tmp/attnscope-bench/<hash of WORK>/, because run.sh's /mnt/host may already be
# bound to another directory; delete that directory to reclaim the space of copies.
#
# Examples:
#   bench/capture_bench.sh                                   # qwen2.5-0.5b Q8_0, 128/512/2048 + 64, 3 reps
#   bench/capture_bench.sh qwen2.5-0.5b:Q8_0 llama-3.2-1b:Q4_K_M llama-3-8b:Q4_K_M
#   bench/capture_bench.sh --prompt-tokens 128 --gen-tokens 8 --reps 1   # smoke test
#   bench/capture_bench.sh --tools capture,generate,hf --prompt-tokens 512
# Measure on an otherwise idle machine: llama.cpp's spinning threads suffer badly from
# other load, and so would the ratios.
set -euo pipefail
if [[ ${1:-} == -h || ${1:-} == --help ]]; then sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0; fi
cd "$(dirname "$0")/.."
command -v python3 >/dev/null || { echo "capture_bench: needs python3" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "capture_bench: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 1; }
exec python3 bench/e2e_bench.py "$@"
