#!/usr/bin/env python3
"""End-to-end benchmark driver behind bench/capture_bench.sh (see its header for usage and
what is measured). Python 3 standard library only.

Layout of the work directory (--work):
  SHAPE-TYPE.gguf                 synthetic models (cached; delete to rebuild)
  prompt-N.txt / ids-N.txt        the N-token prompt as text and as token ids
  runs/SHAPE-TYPE-pN/             the last capture run of that model and length
  logs/                           stderr/stdout of every process, for post-mortems
  results-STAMP.jsonl             one JSON object per measurement, then one per summary row
"""
import argparse
import datetime
import hashlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

ALL_TOOLS = ["capture", "generate", "llama-bench", "llama-plain", "hf"]
DEFAULT_TOOLS = "capture,generate,llama-bench,llama-plain"
TOOL_LABEL = {
    "capture": "attnscope capture",
    "generate": "attnscope generate",
    "llama-plain": "llama.cpp plain (llama-completion)",
    "llama-bench": "llama-bench",
    "hf": "transformers eager + output_attentions",
}
CHROOT_DIR = "/tmp/attnscope-bench"  # where peer files are staged, as the chroot sees it


def log(msg):
    print(f"[capture_bench] {msg}", file=sys.stderr, flush=True)


def die(msg):
    print(f"capture_bench: error: {msg}", file=sys.stderr)
    sys.exit(1)


# ---- Processes ---------------------------------------------------------------------------
def run(cmd, *, stdout_path, stderr_path, timeout, cwd=None):
    """Runs cmd in its own process group (killed whole on timeout or Ctrl-C); returns the
    exit code, or None on timeout. stdin is /dev/null, so nothing can go interactive."""
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=cwd,
                             start_new_session=True)
        try:
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            return None
        except KeyboardInterrupt:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            raise


def read_time(path):
    """(wall seconds, peak RSS kB) from /usr/bin/time -f "%e %M" output (its last line;
    a failed command adds a "Command exited with non-zero status" line before it)."""
    try:
        lines = [line for line in open(path).read().splitlines() if line.strip()]
        wall, rss = lines[-1].split()
        return float(wall), int(rss)
    except (OSError, ValueError, IndexError):
        return None, None


def tail(path, n=15):
    try:
        return "".join(open(path, errors="replace").readlines()[-n:])
    except OSError:
        return ""


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total


def physical_cores():
    try:
        out = subprocess.run(["lscpu", "-p=core,socket"], capture_output=True, text=True, check=True).stdout
        cores = {line for line in out.splitlines() if line and not line.startswith("#")}
        return max(len(cores), 1)
    except (OSError, subprocess.CalledProcessError):
        return os.cpu_count() or 1


def mem_available_bytes():
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def machine_line(threads):
    model = "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        m = re.search(r"^Model name:\s*(.+)$", out, re.M)
        model = m.group(1).strip() if m else model
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024**2:.0f} GB RAM"
    except OSError:
        pass
    return (f"{model}, {physical_cores()} physical cores / {os.cpu_count()} CPUs (nproc), {mem}; "
            f"{threads} threads for every tool")


# ---- Models and prompts -----------------------------------------------------------------
def ensure_model(args, shape, typ):
    path = os.path.join(args.work, f"{shape}-{typ}.gguf")
    if os.path.exists(path):
        return path
    synth = os.path.join(args.build, "tools", "attnscope-synth-model")
    log(f"writing {path} (attnscope-synth-model --shape {shape} --type {typ})")
    tmp = path + ".partial"
    rc = subprocess.run([synth, "--shape", shape, "--type", typ, "-o", tmp]).returncode
    if rc != 0:
        die(f"attnscope-synth-model failed for {shape}:{typ} (exit {rc}); see its message above")
    os.replace(tmp, path)  # an interrupted write never leaves a truncated cached model
    return path


def model_info(args, path):
    out = subprocess.run([os.path.join(args.build, "attnscope"), "info", path, "--json"], capture_output=True,
                         text=True)
    if out.returncode != 0:
        die(f"attnscope info {path} failed:\n{out.stderr}")
    return json.loads(out.stdout)


# Printable ASCII without backslash (llama.cpp processes escape sequences in prompts).
ALPHABET = [c for c in range(32, 127) if c != ord("\\")]
LETTERS = [c for c in ALPHABET if chr(c).isalpha()]


def prompt_ids(n):
    """N byte tokens: random printable ASCII, starting and ending with a letter (no tool can
    then strip or merge leading/trailing white space). Token id = byte value."""
    r = random.Random(1000 + n)
    ids = [r.choice(ALPHABET) for _ in range(n)]
    ids[0] = r.choice(LETTERS)
    ids[-1] = r.choice(LETTERS)
    return ids


def ensure_prompt(args, model, n):
    """Writes prompt-N.txt and ids-N.txt and checks that attnscope tokenizes the text to
    exactly the ids (without BOS), so capture --token-ids and generate --prompt-file see the
    same tokens."""
    ids = prompt_ids(n)
    text_path = os.path.join(args.work, f"prompt-{n}.txt")
    ids_path = os.path.join(args.work, f"ids-{n}.txt")
    with open(text_path, "wb") as f:
        f.write(bytes(ids))
    with open(ids_path, "w") as f:
        f.write(",".join(map(str, ids)))
    out = subprocess.run([os.path.join(args.build, "attnscope"), "tokenize", "-m", model, "--prompt-file", text_path,
                          "--no-bos", "--json"], capture_output=True, text=True)
    if out.returncode != 0:
        die(f"attnscope tokenize failed:\n{out.stderr}")
    got = [t["id"] for t in json.loads(out.stdout)]
    if got != ids:
        first = next((i for i, (a, b) in enumerate(zip(got, ids)) if a != b), min(len(got), len(ids)))
        die(f"{text_path} tokenizes to {len(got)} tokens, expected the {n} byte tokens "
            f"(first difference at {first}); is {model} a synthetic byte-level model?")
    return ids, text_path, ids_path


# ---- Peers -------------------------------------------------------------------------------
class Peers:
    def __init__(self, args):
        self.root = args.peers_root
        self.run_sh = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "peers", "run.sh"))
        # One staging directory per work directory, so that two benchmarks never share files.
        self.cdir = f"{CHROOT_DIR}/{hashlib.sha1(args.work.encode()).hexdigest()[:8]}"
        self.stage = os.path.join(self.root, self.cdir.lstrip("/"))
        self.llama = os.path.exists(self.run_sh) and os.path.exists(os.path.join(self.root, "usr/bin/llama-bench"))
        self.hf = os.path.exists(self.run_sh) and os.path.isdir(
            os.path.join(self.root, "usr/lib/python3/dist-packages/transformers"))
        self.why = None
        if not os.path.exists(self.run_sh):
            self.why = f"{self.run_sh} not found"
        elif not os.path.isdir(self.root):
            self.why = f"no peers chroot at {self.root} (build it with ../shared/peers/setup.sh)"
        if (self.llama or self.hf) and os.geteuid() != 0:
            self.llama = self.hf = False
            self.why = "run.sh needs root (mount, chroot)"

    def has(self, tool):
        if tool in ("llama-bench", "llama-plain"):
            if self.llama and not os.path.exists(os.path.join(self.root, "usr/bin/llama-completion")) \
                    and tool == "llama-plain":
                return False
            return self.llama
        if tool == "hf":
            return self.hf
        return True

    def stage_file(self, path, name=None):
        """Makes path visible in the chroot as CHROOT_DIR/name (hard link, or a copy across
        file systems); returns the chroot path."""
        os.makedirs(self.stage, exist_ok=True)
        name = name or os.path.basename(path)
        dst = os.path.join(self.stage, name)
        if os.path.exists(dst):
            if os.path.samefile(dst, path):
                return f"{self.cdir}/{name}"
            os.remove(dst)
        try:
            os.link(path, dst)
        except OSError:
            log(f"copying {path} into the chroot ({os.path.getsize(path) / 1e9:.2f} GB; not the same file system)")
            shutil.copyfile(path, dst)
        return f"{self.cdir}/{name}"

    def host_path(self, chroot_path):
        return os.path.join(self.root, chroot_path.lstrip("/"))

    def cmd(self, argv, env=()):
        return ["bash", self.run_sh, self.root, "--"] + (["env", *env] if env else []) + argv


# ---- One measurement per tool -------------------------------------------------------------
class Bench:
    def __init__(self, args, peers, results):
        self.args, self.peers, self.results = args, peers, results
        self.exe = os.path.join(args.build, "attnscope")
        self.logs = os.path.join(args.work, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.versions = {}

    def paths(self, tag):
        return (os.path.join(self.logs, f"{tag}.out"), os.path.join(self.logs, f"{tag}.err"),
                os.path.join(self.logs, f"{tag}.time"))

    def ctx_args(self, n, flag="-c"):
        c = self.args.ctx
        if c == "model":
            return []
        return [flag, str(n + self.args.gen_tokens if c == "auto" else int(c))]

    def record(self, row):
        self.results.write(json.dumps(row) + "\n")
        self.results.flush()
        return row

    def failed(self, base, tool, rc, err_path, why=""):
        msg = why or ("timed out" if rc is None else f"exit {rc}")
        log(f"{tool} FAILED ({msg}); last lines of {err_path}:\n{tail(err_path)}")
        return self.record(dict(base, tool=tool, ok=False, error=msg, log=err_path))

    def capture(self, base, model, ids, n, rep):
        a = self.args
        tag = f"{base['model']}-{base['weights']}-p{n}-capture-r{rep}"
        out, err, tfile = self.paths(tag)
        rundir = os.path.join(a.work, "runs", f"{base['model']}-{base['weights']}-p{n}")
        os.makedirs(os.path.dirname(rundir), exist_ok=True)
        cmd = ["/usr/bin/time", "-f", "%e %M", "-o", tfile, self.exe, "capture", "-m", model,
               "--token-ids", ",".join(map(str, ids)), "--no-bos", "-n", str(a.gen_tokens), "--ignore-eos",
               "-t", str(a.threads), *self.ctx_args(n), "--precision", a.precision, "-o", rundir, "-q",
               "--overwrite"]
        rc = run(cmd, stdout_path=out, stderr_path=err, timeout=a.timeout)
        wall, rss = read_time(tfile)
        if rc != 0 or wall is None:
            return self.failed(base, "capture", rc, err)
        m = json.load(open(os.path.join(rundir, "manifest.json")))
        t = m["timings"]
        n_prompt = m["n_prompt"]
        n_rows = m["attention"]["n_rows"]
        n_gen = len(m["tokens"]) - n_prompt
        if n_prompt != n:
            return self.failed(base, "capture", rc, err, f"manifest says {n_prompt} prompt tokens, expected {n}")
        decode_passes = n_rows - n_prompt  # includes the last token fed for its attention row
        L, H = m["attention"]["n_layers"], m["attention"]["n_heads"]
        return self.record(dict(
            base, tool="capture", ok=True, wall_s=wall, peak_rss_kb=rss, n_prompt=n_prompt, n_gen=n_gen,
            prefill_s=t["prefill_seconds"], decode_s=t["decode_seconds"], total_s=t["total_seconds"],
            prefill_tok_s=n_prompt / t["prefill_seconds"],
            decode_tok_s=decode_passes / t["decode_seconds"] if t["decode_seconds"] else None,
            decode_passes=decode_passes, store_bytes=dir_bytes(rundir),
            attention_values=L * H * n_rows * (n_rows + 1) // 2, precision=m["attention"]["precision"]))

    GEN_RE = re.compile(r"prompt: (\d+) tokens in ([\d.]+) s \(([\d.]+) tokens/s\); generated: (\d+) tokens in "
                        r"([\d.]+) s \(([\d.]+) tokens/s\)")

    def generate(self, base, model, text_path, n, rep):
        a = self.args
        tag = f"{base['model']}-{base['weights']}-p{n}-generate-r{rep}"
        out, err, tfile = self.paths(tag)
        cmd = ["/usr/bin/time", "-f", "%e %M", "-o", tfile, self.exe, "generate", "-m", model, "--prompt-file",
               text_path, "--no-bos", "-n", str(a.gen_tokens), "--ignore-eos", "-t", str(a.threads),
               *self.ctx_args(n)]
        rc = run(cmd, stdout_path=out, stderr_path=err, timeout=a.timeout)
        wall, rss = read_time(tfile)
        if rc != 0 or wall is None:
            return self.failed(base, "generate", rc, err)
        m = self.GEN_RE.search(open(err, errors="replace").read())
        if not m:
            return self.failed(base, "generate", rc, err, "no 'prompt: ... generated: ...' statistics line")
        n_prompt, pre_s, pre_tps, n_gen, dec_s, _ = m.groups()
        if int(n_prompt) != n:
            return self.failed(base, "generate", rc, err, f"{n_prompt} prompt tokens, expected {n}")
        passes = max(int(n_gen) - 1, 0)  # the first token comes from the prefill's logits
        dec_s = float(dec_s)  # printed with 2 decimals
        return self.record(dict(
            base, tool="generate", ok=True, wall_s=wall, peak_rss_kb=rss, n_prompt=int(n_prompt), n_gen=int(n_gen),
            prefill_s=float(pre_s), decode_s=dec_s, prefill_tok_s=float(pre_tps),
            decode_tok_s=passes / dec_s if dec_s > 0 else None, decode_passes=passes))

    PERF_PROMPT = re.compile(r"prompt eval time =\s*([\d.]+) ms /\s*(\d+) tokens")
    PERF_EVAL = re.compile(r"(?<!prompt )eval time =\s*([\d.]+) ms /\s*(\d+) runs")

    def llama_plain(self, base, model_c, text_c, n, rep):
        a = self.args
        tag = f"{base['model']}-{base['weights']}-p{n}-llama-plain-r{rep}"
        out, err, _ = self.paths(tag)
        tfile_c = f"{self.peers.cdir}/{tag}.time"
        cmd = self.peers.cmd(["/usr/bin/time", "-f", "%e %M", "-o", tfile_c, "llama-completion", "-m", model_c,
                              "-f", text_c, "-n", str(a.gen_tokens), "-t", str(a.threads), *self.ctx_args(n),
                              "--ignore-eos", "-no-cnv", "--temp", "0", "--seed", "1"], a.peer_env)
        rc = run(cmd, stdout_path=out, stderr_path=err, timeout=a.timeout)
        wall, rss = read_time(self.peers.host_path(tfile_c))
        if rc != 0 or wall is None:
            return self.failed(base, "llama-plain", rc, err)
        text = open(err, errors="replace").read()
        mp, me = self.PERF_PROMPT.search(text), self.PERF_EVAL.search(text)
        if not mp or not me:
            return self.failed(base, "llama-plain", rc, err, "no 'prompt eval time' / 'eval time' perf lines")
        p_ms, p_tok, e_ms, e_runs = float(mp[1]), int(mp[2]), float(me[1]), int(me[2])
        if p_tok != n:
            log(f"warning: llama-completion evaluated {p_tok} prompt tokens, expected {n}")
        return self.record(dict(
            base, tool="llama-plain", ok=True, wall_s=wall, peak_rss_kb=rss, n_prompt=p_tok, n_gen=e_runs + 1,
            prefill_s=p_ms / 1e3, decode_s=e_ms / 1e3, prefill_tok_s=p_tok / (p_ms / 1e3),
            decode_tok_s=e_runs / (e_ms / 1e3) if e_ms > 0 else None, decode_passes=e_runs,
            prompt_tokens_match=p_tok == n))

    def llama_bench(self, base, model_c, n):
        a = self.args
        tag = f"{base['model']}-{base['weights']}-p{n}-llama-bench"
        out, err, _ = self.paths(tag)
        cmd = self.peers.cmd(["llama-bench", "-m", model_c, "-p", str(n), "-n", str(a.gen_tokens), "-t",
                              str(a.threads), "-r", str(a.reps), "-o", "json"], a.peer_env)
        rc = run(cmd, stdout_path=out, stderr_path=err, timeout=a.timeout)
        if rc != 0:
            return [self.failed(base, "llama-bench", rc, err)]
        try:
            tests = json.load(open(out))
        except ValueError:
            return [self.failed(base, "llama-bench", rc, err, f"no JSON in {out}")]
        rows = []
        for t in tests:
            self.versions["llama.cpp"] = f"build {t.get('build_number')} ({t.get('build_commit')})"
            kind = "pp" if t["n_gen"] == 0 else "tg"
            for rep, ts in enumerate(t.get("samples_ts") or [t["avg_ts"]]):
                rows.append(self.record(dict(
                    base, tool="llama-bench", ok=True, rep=rep, test=kind,
                    test_n_prompt=t["n_prompt"], test_n_gen=t["n_gen"], tok_s=ts, flash_attn=t.get("flash_attn"),
                    n_threads=t.get("n_threads"))))
        return rows

    def hf_model(self, base, model_c):
        """What transformers loads: with --hf-load safetensors (default) a Hugging Face
        directory next to the staged GGUF, made from it once by transformers' own GGUF
        loader (hf_attention_bench.py --save-dir) and kept while it is newer than the GGUF;
        with --hf-load gguf the GGUF itself. Returns (the script's arguments, None), or
        (None, (exit code, stderr path)) when the conversion failed."""
        if self.args.hf_load == "gguf":
            return ["--gguf", model_c], None
        dir_c = f"{self.peers.cdir}/hf-{base['model']}-{base['weights']}"
        done = os.path.join(self.peers.host_path(dir_c), "config.json")
        if not (os.path.exists(done) and os.path.getmtime(done) >= os.path.getmtime(self.peers.host_path(model_c))):
            log(f"converting {os.path.basename(model_c)} to a transformers directory (once)")
            tag = f"{base['model']}-{base['weights']}-hf-convert"
            out, err, _ = self.paths(tag)
            shutil.rmtree(self.peers.host_path(dir_c), ignore_errors=True)
            rc = run(self.peers.cmd(["python3", self.hf_script(), "--gguf", model_c, "--save-dir", dir_c],
                                    self.args.peer_env), stdout_path=out, stderr_path=err, timeout=self.args.timeout)
            if rc != 0 or not os.path.exists(done):
                return None, (rc, err)
        return ["--model-dir", dir_c], None

    def hf_script(self):
        return self.peers.stage_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "hf_attention_bench.py"))

    def hf(self, base, model_c, ids_c, n, rep):
        a = self.args
        source, failure = self.hf_model(base, model_c)
        if source is None:
            return self.failed(base, "hf", *failure, "converting the GGUF for transformers failed")
        tag = f"{base['model']}-{base['weights']}-p{n}-hf-r{rep}"
        out, err, _ = self.paths(tag)
        tfile_c = f"{self.peers.cdir}/{tag}.time"
        cmd = self.peers.cmd(["/usr/bin/time", "-f", "%e %M", "-o", tfile_c, "python3", self.hf_script(), *source,
                              "--token-ids", "@" + ids_c, "-n", str(a.gen_tokens), "-t", str(a.threads)], a.peer_env)
        rc = run(cmd, stdout_path=out, stderr_path=err, timeout=a.timeout)
        wall, rss = read_time(self.peers.host_path(tfile_c))
        if rc != 0 or wall is None:
            return self.failed(base, "hf", rc, err)
        try:
            r = json.loads(open(out).read().strip().splitlines()[-1])
        except (ValueError, IndexError):
            return self.failed(base, "hf", rc, err, f"no JSON line in {out}")
        self.versions["transformers"] = (f"{r['transformers_version']} (torch {r['torch_version']}, {r['dtype']}, "
                                         f"{r.get('loader')})")
        return self.record(dict(
            base, tool="hf", ok=True, wall_s=wall, peak_rss_kb=rss, n_prompt=r["n_prompt"], n_gen=r["n_gen"],
            prefill_s=r["prefill_seconds"], decode_s=r["decode_seconds"],
            prefill_tok_s=r["n_prompt"] / r["prefill_seconds"],
            decode_tok_s=r["decode_tokens"] / r["decode_seconds"] if r["decode_seconds"] > 0 else None,
            load_s=r["import_and_load_seconds"], attention_bytes=r["attention_bytes"], loader=r.get("loader")))


def hf_memory_estimate(info, n, gen, from_gguf, dtype_bytes=2):
    """Bytes transformers needs: weights in bf16 (plus their float32 copy while loading a
    GGUF), and the returned attentions (prefill: L*H*n^2, then L*H*(n+i) per generated
    token)."""
    d = info["dimensions"]
    weights = info["n_parameters"] * (dtype_bytes + (4 if from_gguf else 0))
    L, H = d["n_layers"], d["n_heads"]
    attn = L * H * (n * n + sum(n + i for i in range(1, gen))) * dtype_bytes
    return weights + attn


# ---- Tables -------------------------------------------------------------------------------
def med(rows, key):
    vals = [r[key] for r in rows if r.get("ok") and r.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, digits=1):
    return "—" if v is None else f"{v:.{digits}f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def sum_or_none(a, b):
    return None if a is None or b is None else a + b


def goal(v, limit, upper):
    if v is None:
        return "—"
    ok = v <= limit if upper else v >= limit
    return f"{v:.2f} {'✓' if ok else '✗'}"


def print_tables(args, cases, header_lines):
    """cases: list of (base, info, model_bytes, {tool: [rows]})."""
    for line in header_lines:
        print(line)
    print()
    print("| model | weights | prompt + gen | tool | wall s | prefill tok/s | decode tok/s | peak RSS GB | store MB "
          "| wall ÷ llama.cpp plain | prefill ÷ llama-bench pp | decode ÷ llama-bench tg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    summaries = []
    for base, info, model_bytes, by_tool in cases:
        lb = by_tool.get("llama-bench", [])
        pp = med([r for r in lb if r.get("test") == "pp"], "tok_s")
        tg = med([r for r in lb if r.get("test") == "tg"], "tok_s")
        plain_wall = med(by_tool.get("llama-plain", []), "wall_s")
        pg = f"{base['n_prompt']} + {base['n_gen']}"
        for tool in ["capture", "generate", "llama-plain", "llama-bench", "hf"]:
            rows = by_tool.get(tool)
            if rows is None:
                continue
            n_ok = sum(1 for r in rows if r.get("ok"))
            label = TOOL_LABEL[tool] + ("" if n_ok or not rows else " (failed)")
            if tool == "llama-bench":
                cells = ["—", fmt(pp), fmt(tg, 2), "—", "—", "—", "1.00" if pp else "—", "1.00" if tg else "—"]
            else:
                wall, pre, dec = med(rows, "wall_s"), med(rows, "prefill_tok_s"), med(rows, "decode_tok_s")
                rss = med(rows, "peak_rss_kb")
                store = med(rows, "store_bytes")
                cells = [fmt(wall, 2), fmt(pre), fmt(dec, 2), fmt(rss and rss * 1024 / 1e9, 2),
                         fmt(store and store / 1e6, 1), fmt(ratio(wall, plain_wall), 2), fmt(ratio(pre, pp), 2),
                         fmt(ratio(dec, tg), 2)]
            print(f"| {base['model']} | {base['weights']} | {pg} | {label} | " + " | ".join(cells) + " |")
        summaries.append((base, info, model_bytes, by_tool, pp, tg, plain_wall))

    print()
    print("Goals (issue 6): capture wall ÷ llama.cpp plain wall ≤ 1.25; attnscope generate prefill ÷ llama-bench "
          "pp ≥ 0.8 and decode ÷ llama-bench tg ≥ 0.8; capture wall ÷ generate wall ≤ 1.15 (medians).")
    print()
    print("| model | weights | prompt + gen | capture ÷ llama.cpp wall (≤ 1.25) | prefill ÷ pp (≥ 0.8) "
          "| decode ÷ tg (≥ 0.8) | capture ÷ generate wall (≤ 1.15) |")
    print("|---|---|---|---|---|---|---|")
    summary_rows = []
    for base, info, model_bytes, by_tool, pp, tg, plain_wall in summaries:
        cap, gen = by_tool.get("capture", []), by_tool.get("generate", [])
        r_wall = ratio(med(cap, "wall_s"), plain_wall)
        r_pp = ratio(med(gen, "prefill_tok_s"), pp)
        r_tg = ratio(med(gen, "decode_tok_s"), tg)
        r_cg = ratio(med(cap, "wall_s"), med(gen, "wall_s"))
        print(f"| {base['model']} | {base['weights']} | {base['n_prompt']} + {base['n_gen']} | "
              f"{goal(r_wall, 1.25, True)} | {goal(r_pp, 0.8, False)} | {goal(r_tg, 0.8, False)} | "
              f"{goal(r_cg, 1.15, True)} |")
        summary_rows.append(dict(base, summary=True, capture_wall_over_llama_wall=r_wall, prefill_over_pp=r_pp,
                                 decode_over_tg=r_tg, capture_wall_over_generate_wall=r_cg,
                                 llama_bench_pp=pp, llama_bench_tg=tg, llama_plain_wall=plain_wall))

    hf_cases = [(base, by_tool) for base, _, _, by_tool, *_ in summaries
                if med(by_tool.get("capture", []), "wall_s") and med(by_tool.get("hf", []), "wall_s")]
    if hf_cases:
        print()
        print("Against transformers (goal: faster at every length, with lower peak memory, the gap widening "
              "with length; medians; work = prefill + decode, without loading):")
        print()
        print("| model | weights | prompt + gen | capture wall s / RSS GB | transformers wall s / RSS GB "
              "| time saved s | memory saved GB | wall ratio | memory ratio | work s: capture / transformers |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for base, by_tool in hf_cases:
            cap, hf = by_tool["capture"], by_tool["hf"]
            cw, hw = med(cap, "wall_s"), med(hf, "wall_s")
            cr, hr = med(cap, "peak_rss_kb") * 1024 / 1e9, med(hf, "peak_rss_kb") * 1024 / 1e9
            work = [sum_or_none(med(rows, "prefill_s"), med(rows, "decode_s")) for rows in (cap, hf)]
            print(f"| {base['model']} | {base['weights']} | {base['n_prompt']} + {base['n_gen']} | {cw:.2f} / {cr:.2f} "
                  f"| {hw:.2f} / {hr:.2f} | {hw - cw:.2f} | {hr - cr:.2f} | {hw / cw:.1f}× | {hr / cr:.1f}× "
                  f"| {fmt(work[0], 2)} / {fmt(work[1], 2)} |")

    if any(r.get("ok") for _, _, _, by_tool, *_ in summaries for r in by_tool.get("capture", [])):
        print()
        print("Capture memory and store (medians; KV cache = attnscope's f32 K and V for prompt + generated "
              "tokens):")
        print()
        print("| model | weights | prompt + gen | peak RSS GB | model GB | KV cache GB | RSS − model − KV (MB) "
              "| store MB | bytes/value |")
        print("|---|---|---|---|---|---|---|---|---|")
        for base, info, model_bytes, by_tool, *_ in summaries:
            cap = by_tool.get("capture", [])
            rss = med(cap, "peak_rss_kb")
            store = med(cap, "store_bytes")
            values = med(cap, "attention_values")
            if rss is None:
                continue
            d = info["dimensions"]
            n = base["n_prompt"] + base["n_gen"]
            kv = 2 * d["n_layers"] * n * d["n_kv_heads"] * d["head_dim"] * 4
            rss_b = rss * 1024
            print(f"| {base['model']} | {base['weights']} | {base['n_prompt']} + {base['n_gen']} | {rss_b / 1e9:.2f} "
                  f"| {model_bytes / 1e9:.2f} | {kv / 1e9:.3f} | {(rss_b - model_bytes - kv) / 1e6:.0f} | "
                  f"{store / 1e6:.1f} | {store / values:.3f} |")
    return summary_rows


# ---- Main -----------------------------------------------------------------------------------
def parse_args():
    env = os.environ.get
    ap = argparse.ArgumentParser(prog="bench/capture_bench.sh",
                                 description="End-to-end benchmark; see the header of bench/capture_bench.sh.")
    ap.add_argument("specs", nargs="*", metavar="SHAPE:TYPE")
    ap.add_argument("--prompt-tokens", default=env("PROMPT_TOKENS", "128,512,2048"))
    ap.add_argument("--gen-tokens", type=int, default=int(env("GEN_TOKENS", "64")))
    ap.add_argument("--reps", type=int, default=int(env("REPS", "3")))
    ap.add_argument("--threads", type=int, default=int(env("THREADS", "0")))
    ap.add_argument("--ctx", default="auto")
    ap.add_argument("--precision", default=env("PRECISION", "f16"), choices=["f16", "f32", "u8"])
    ap.add_argument("--tools", default=DEFAULT_TOOLS)
    ap.add_argument("--hf-reps", type=int, default=1)
    ap.add_argument("--hf-load", default="safetensors", choices=["safetensors", "gguf"])
    ap.add_argument("--no-warmup", dest="warmup", action="store_false",
                    help="skip the unrecorded first run of each tool per model")
    ap.add_argument("--build", default=env("BUILD", "build"))
    ap.add_argument("--work", default=env("WORK", "/tmp/attnscope-bench"))
    ap.add_argument("--peers-root", default=os.path.join(os.path.expanduser("~"), ".cache/attnscope-peers/sid"))
    ap.add_argument("--timeout", type=float, default=7200)
    ap.add_argument("--peer-env", action="append", default=[], metavar="VAR=VALUE")
    a = ap.parse_args()
    a.specs = a.specs or ["qwen2.5-0.5b:Q8_0"]
    for s in a.specs:
        if s.count(":") != 1 or not all(s.split(":")):
            ap.error(f"invalid model spec '{s}': expected SHAPE:TYPE, e.g. qwen2.5-0.5b:Q8_0")
    try:
        a.prompt_tokens = [int(x) for x in str(a.prompt_tokens).split(",") if x.strip()]
    except ValueError:
        ap.error(f"invalid --prompt-tokens '{a.prompt_tokens}': expected e.g. 128,512,2048")
    if not a.prompt_tokens or min(a.prompt_tokens) < 2 or a.gen_tokens < 1 or a.reps < 1:
        ap.error("need prompt lengths >= 2, --gen-tokens >= 1 and --reps >= 1")
    if a.ctx not in ("auto", "model") and not a.ctx.isdigit():
        ap.error(f"invalid --ctx '{a.ctx}': expected auto, model or a number")
    a.tools = [t.strip() for t in a.tools.split(",") if t.strip()]
    for t in a.tools:
        if t not in ALL_TOOLS:
            ap.error(f"invalid tool '{t}': expected some of {','.join(ALL_TOOLS)}")
    for e in a.peer_env:
        if "=" not in e or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", e.split("=", 1)[0]):
            ap.error(f"invalid --peer-env '{e}': expected VAR=VALUE")
    a.threads = a.threads or physical_cores()
    a.work = os.path.abspath(a.work)
    return a


def main():
    a = parse_args()
    for exe in [os.path.join(a.build, "attnscope"), os.path.join(a.build, "tools", "attnscope-synth-model")]:
        if not os.access(exe, os.X_OK):
            die(f"{exe} not found; build it first:\n  cmake -S . -B {a.build} -DCMAKE_BUILD_TYPE=Release && "
                f"cmake --build {a.build} -j2 --target attnscope_cli attnscope_synth_model")
    if not os.access("/usr/bin/time", os.X_OK):
        die("needs GNU time at /usr/bin/time (apt-get install time)")
    os.makedirs(a.work, exist_ok=True)

    peers = Peers(a)
    tools = []
    for t in a.tools:
        if peers.has(t):
            tools.append(t)
        else:
            what = "llama.cpp" if t.startswith("llama") else "transformers"
            log(f"skipping {t}: {what} peer not available ({peers.why or 'not installed in ' + peers.root})")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    results_path = os.path.join(a.work, f"results-{stamp}.jsonl")
    results = open(results_path, "w")
    bench = Bench(a, peers, results)
    log(f"tools: {', '.join(tools)}; prompts {a.prompt_tokens} + {a.gen_tokens}; {a.reps} reps; "
        f"{a.threads} threads; ctx {a.ctx}; raw results -> {results_path}")

    cases = []
    kernels = "?"
    for spec in a.specs:
        shape, typ = spec.split(":")
        model = ensure_model(a, shape, typ)
        info = model_info(a, model)
        kernels = info.get("kernels", kernels)
        model_c = peers.stage_file(model) if any(t in tools for t in ("llama-bench", "llama-plain", "hf")) else None
        warm = a.warmup
        for n in a.prompt_tokens:
            ids, text_path, ids_path = ensure_prompt(a, model, n)
            text_c = peers.stage_file(text_path) if model_c else None
            ids_c = peers.stage_file(ids_path) if model_c else None
            base = dict(model=shape, weights=typ, n_prompt=n, n_gen=a.gen_tokens, threads=a.threads, ctx=a.ctx)
            by_tool = {t: [] for t in tools}
            hf_ok = "hf" in tools
            if hf_ok:
                need, avail = hf_memory_estimate(info, n, a.gen_tokens, a.hf_load == "gguf"), mem_available_bytes()
                if avail is not None and need > 0.9 * avail:
                    log(f"skipping hf for {shape}:{typ} {n}+{a.gen_tokens}: needs about {need / 1e9:.1f} GB, "
                        f"{avail / 1e9:.1f} GB available")
                    by_tool.pop("hf")
                    hf_ok = False
            def run(tool, rep):
                b = dict(base, rep=rep)
                rep = max(rep, 0)  # the warm-up (rep -1) uses the first repetition's files
                if tool == "capture":
                    return bench.capture(b, model, ids, n, rep)
                if tool == "generate":
                    return bench.generate(b, model, text_path, n, rep)
                if tool == "llama-plain":
                    return bench.llama_plain(b, model_c, text_c, n, rep)
                return bench.hf(b, model_c, ids_c, n, rep)

            if warm:
                # One unrecorded run of each tool first: cold page cache, Python imports and
                # the like would otherwise land on the first prompt length only.
                warm = False
                for tool in ["generate", "capture", "llama-plain"] + (["hf"] if hf_ok and a.hf_reps > 0 else []):
                    if tool in by_tool:
                        log(f"{shape} {typ} {n}+{a.gen_tokens} warm-up: {tool} ...")
                        run(tool, -1)
            for rep in range(a.reps):
                # Tools interleaved within each repetition, so that drift hits them alike.
                for tool in ["generate", "capture", "llama-plain"] + (["hf"] if hf_ok and rep < a.hf_reps else []):
                    if tool not in by_tool:
                        continue
                    log(f"{shape} {typ} {n}+{a.gen_tokens} rep {rep + 1}/{a.reps}: {tool} ...")
                    r = run(tool, rep)
                    by_tool[tool].append(r)
                    if r.get("ok"):
                        log(f"  wall {r['wall_s']:.2f} s, prefill {fmt(r.get('prefill_tok_s'))} tok/s, "
                            f"decode {fmt(r.get('decode_tok_s'), 2)} tok/s, "
                            f"peak RSS {r['peak_rss_kb'] * 1024 / 1e9:.2f} GB")
            if "llama-bench" in by_tool:
                log(f"{shape} {typ} {n}+{a.gen_tokens}: llama-bench -r {a.reps} ...")
                by_tool["llama-bench"] = bench.llama_bench(base, model_c, n)
            cases.append((base, info, os.path.getsize(model), by_tool))

    versions = [f"{subprocess.run([bench.exe, '--version'], capture_output=True, text=True).stdout.strip()} "
                f"(kernels: {kernels}; ATTNSCOPE_CPU={os.environ.get('ATTNSCOPE_CPU', 'unset')})"]
    versions += [f"{k} {v}" for k, v in bench.versions.items()]
    header = [
        f"Machine: {machine_line(a.threads)}.",
        f"Software: {'; '.join(versions)}.",
        f"Runs: random-weight models from attnscope-synth-model; prompt = N byte tokens, no BOS; "
        f"{a.gen_tokens} generated (EOS ignored), greedy; context {a.ctx if a.ctx != 'auto' else 'prompt + generated'}; "
        f"capture stored as {a.precision}; medians of {a.reps} whole-process runs "
        f"(transformers: {a.hf_reps}){', after one unrecorded warm-up run of each tool' if a.warmup else ''}; "
        f"{datetime.date.today().isoformat()}.",
    ]
    if a.peer_env:
        header.append(f"Peers run with {' '.join(a.peer_env)}.")
    summary = print_tables(a, cases, header)
    for row in summary:
        results.write(json.dumps(row) + "\n")
    results.close()
    log(f"raw results: {results_path}")
    failed = [f"{b['model']}:{b['weights']} {b['n_prompt']}+{b['n_gen']} {t}" for b, _, _, by_tool in cases
              for t, rows in by_tool.items() for r in rows if not r.get("ok")]
    if failed:
        log(f"{len(failed)} run(s) failed (logs in {bench.logs}): " + "; ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
