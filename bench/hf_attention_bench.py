#!/usr/bin/env python3
"""Hugging Face transformers peer for bench/capture_bench.sh: greedy generation with every
attention probability returned, the way a Python user gets them today.

Loads the model the way a transformers user does: from a Hugging Face directory of
safetensors (--model-dir; make one from a GGUF file once with --gguf M --save-dir DIR,
which dequantizes the GGUF's weights to --dtype with transformers' own GGUF loader and
saves them), or straight from the GGUF file (--gguf; slower to load, and its float32
dequantization makes loading, not generating, the peak of memory). Eager attention, then
    model.generate(ids, max_new_tokens=N, min_new_tokens=N, do_sample=False,
                   output_attentions=True, return_dict_in_generate=True)
and prints one JSON object on stdout: load / prefill / decode seconds, token counts, and
the bytes of attention tensors the result holds. Wall time and peak RSS of the whole
process are measured from outside (/usr/bin/time) by capture_bench.sh.

Runs where transformers and torch are installed (the peers chroot, see
../shared/peers/setup.sh); transformers' GGUF loader supports the llama, qwen2 and qwen3
architectures among others. Needs memory for the weights in --dtype (with --gguf, plus
their dequantized float32 copy while loading), plus the attentions: layers x heads x
(prompt + generated)^2 values at --dtype.

usage: hf_attention_bench.py --gguf MODEL.gguf --save-dir DIR          # convert once
       hf_attention_bench.py --model-dir DIR --token-ids 72,101,108 [-n 64] [-t THREADS]
       hf_attention_bench.py --gguf MODEL.gguf --token-ids @ids.txt --no-attentions
"""
import argparse
import json
import os
import sys
import time


def parse_ids(text):
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as f:
            text = f.read()
    return [int(t) for t in text.replace("\n", ",").split(",") if t.strip()]


def load_gguf(path, dtype, dtype_kw):
    """The model in a GGUF file, through transformers' own GGUF loader; (model, loader)."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers import AutoModelForCausalLM
    # Debian's python3-gguf has no version transformers can read ('N/A'), which makes its
    # check fail although the module imports fine: trust the import.
    import gguf  # noqa: F401  (fails here, with a clear message, when it is missing)
    gguf_utils.is_gguf_available = lambda *a, **k: True

    directory, name = os.path.split(os.path.abspath(path))
    try:
        import accelerate  # noqa: F401  (from_pretrained's GGUF path requires it)
        model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, attn_implementation="eager",
                                                     **{dtype_kw: dtype})
        return model, "from_pretrained(gguf_file)"
    except ImportError:
        pass
    # The peers chroot has no accelerate: build the model from the GGUF's config and load
    # the state dict that transformers' own GGUF reader makes (the same function
    # from_pretrained calls), then check that every weight was found.
    from transformers import AutoConfig
    config = AutoConfig.from_pretrained(directory, gguf_file=name)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager", **{dtype_kw: dtype})
    state = gguf_utils.load_gguf_checkpoint(os.path.join(directory, name), return_tensors=True,
                                            model_to_load=model, torch_dtype=dtype)["tensors"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    del state
    model.tie_weights()
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        sys.exit(f"hf_attention_bench: GGUF weights do not match the model: missing {missing[:5]}, "
                 f"unexpected {unexpected[:5]}")
    return model, "from_config + load_gguf_checkpoint (no accelerate)"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model-dir", help="Hugging Face model directory (config.json + safetensors)")
    src.add_argument("--gguf", help="GGUF model file")
    ap.add_argument("--save-dir", help="with --gguf: save the model as safetensors in this directory and exit")
    ap.add_argument("--token-ids", help="comma-separated prompt token ids, or @FILE")
    ap.add_argument("-n", "--n-predict", type=int, default=64, help="tokens to generate (EOS ignored)")
    ap.add_argument("-t", "--threads", type=int, default=0, help="torch threads (default: torch's)")
    ap.add_argument("--dtype", default="bfloat16", help="bfloat16 (default), float16 or float32")
    ap.add_argument("--no-attentions", action="store_true",
                    help="plain generation, without output_attentions (for the cost of returning them)")
    args = ap.parse_args()
    if args.save_dir and not args.gguf:
        ap.error("--save-dir needs --gguf")
    if not args.save_dir and not args.token_ids:
        ap.error("--token-ids is required (unless converting with --save-dir)")
    t_start = time.perf_counter()

    import torch
    import transformers
    from transformers import AutoModelForCausalLM, LogitsProcessor, LogitsProcessorList

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    dtype_kw = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"  # renamed in 4.56
    if args.gguf:
        model, loader = load_gguf(args.gguf, dtype, dtype_kw)
    else:
        model = AutoModelForCausalLM.from_pretrained(args.model_dir, attn_implementation="eager",
                                                     **{dtype_kw: dtype})
        loader = "from_pretrained(safetensors)"
    if args.save_dir:
        model.save_pretrained(args.save_dir, safe_serialization=True)
        print(json.dumps({"saved": args.save_dir, "dtype": args.dtype, "loader": loader,
                          "seconds": time.perf_counter() - t_start}))
        return 0
    model.eval()
    t_loaded = time.perf_counter()

    class Stamp(LogitsProcessor):
        """Records when each step's logits are ready: the first is the end of the prefill."""

        def __init__(self):
            self.times = []

        def __call__(self, input_ids, scores):
            self.times.append(time.perf_counter())
            return scores

    ids = parse_ids(args.token_ids)
    input_ids = torch.tensor([ids], dtype=torch.long)
    stamp = Stamp()
    eos = model.generation_config.eos_token_id
    pad = eos[0] if isinstance(eos, list) else eos
    t_gen = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=args.n_predict,
                             min_new_tokens=args.n_predict, do_sample=False,
                             output_attentions=not args.no_attentions, return_dict_in_generate=True,
                             logits_processor=LogitsProcessorList([stamp]), pad_token_id=pad)
    t_end = time.perf_counter()

    n_gen = int(out.sequences.shape[1]) - len(ids)
    attention_bytes = 0
    if out.attentions is not None:  # (steps) of (layers) of (batch, heads, queries, keys)
        for step in out.attentions:
            for layer in step:
                attention_bytes += layer.numel() * layer.element_size()
    prefill = stamp.times[0] - t_gen if stamp.times else float("nan")
    decode = t_end - stamp.times[0] if stamp.times else float("nan")
    print(json.dumps({
        "tool": "transformers",
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "dtype": args.dtype,
        "loader": loader,
        "threads": torch.get_num_threads(),
        "output_attentions": not args.no_attentions,
        "n_prompt": len(ids),
        "n_gen": n_gen,
        "import_and_load_seconds": t_loaded - t_start,
        "prefill_seconds": prefill,
        # the first generated token comes from the prefill; the decode makes the others
        "decode_seconds": decode,
        "decode_tokens": max(n_gen - 1, 0),
        "generate_seconds": t_end - t_gen,
        "attention_bytes": attention_bytes,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
