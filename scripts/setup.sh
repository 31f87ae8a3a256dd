#!/usr/bin/env bash
# The README's first command: installs the dependencies (apt), builds attnscope, runs
# it on a model, captures the example prompt's attention and renders the viewer.
#   scripts/setup.sh [MODEL.gguf] [PROMPT]
# Without a MODEL it uses the bundled demo model (models/attnscope-demo-kjv-f16.gguf).
# The default prompt says a verse twice, so the demo model's induction head (layer 1,
# head 0) has something to find: in the second copy every token looks at the token
# that followed it the first time.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/build.sh
bin=build/attnscope

model=${1:-${ATTNSCOPE_MODEL:-}}
prompt=${2:-"And God said, Let there be light: and there was light. And God saw the light, that it was good. And God said, Let there be light: and there was light. And God saw"}
if [ -z "$model" ]; then
  for candidate in models/attnscope-demo-kjv-f16.gguf models/*.gguf; do
    if [ -f "$candidate" ]; then model=$candidate; break; fi
  done
fi
if [ -z "$model" ]; then
  cat <<MSG

attnscope is built: $PWD/$bin
No model was given. Point it at any GGUF file of the llama, qwen2 or qwen3 architecture:

  scripts/setup.sh path/to/model.gguf
  $bin info path/to/model.gguf
  $bin generate -m path/to/model.gguf -p "Once upon a time" -n 32
MSG
  exit 0
fi

echo
"$bin" info "$model"
echo
echo "== $bin generate -m $model -p \"$prompt\" -n 32"
"$bin" generate -m "$model" -p "$prompt" -n 32 --echo
echo
echo "== $bin capture -m $model -p \"$prompt\" -n 16 -o runs/example --overwrite"
"$bin" capture -m "$model" -p "$prompt" -n 16 -o runs/example --overwrite
"$bin" render runs/example -o view/example -q
cat <<MSG

attnscope is built: $PWD/$bin  (try '$bin --help')
Open the viewer: file://$PWD/view/example/index.html
  or serve every run: $bin serve runs/   (then visit http://127.0.0.1:8080/)
MSG
