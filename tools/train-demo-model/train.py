#!/usr/bin/python3
"""Train attnscope's demo model: a tiny LLaMA-architecture model on the King James Bible.

Stages (all seeded and deterministic; run `all` for the whole pipeline):

  corpus    extract the KJV text from Debian's bible-kjv(-text) packages, split train/val
  tokenizer train a SentencePiece BPE vocabulary (byte fallback) on the training text
  train     train the model; log to stdout; write weights (safetensors) + vocab (JSON)
  convert   run attnscope-convert-demo (the project's C++ GGUF writer) -> models/*.gguf
  selftest  compare the PyTorch model with attnscope on the GGUF (logits + attention)

Use Debian's python (/usr/bin/python3) with python3-torch and python3-sentencepiece.
See README.md beside this file for the exact commands.
"""
import argparse
import hashlib
import json
import math
import os
import random
import re
import struct
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

# ---- Hyper-parameters (the model card quotes these) -------------------------
CFG = dict(
    seed=1234,
    vocab_size=2048,
    n_layers=4,
    n_heads=4,
    dim=256,
    ffn_dim=688,
    ctx=256,
    rope_theta=10000.0,
    norm_eps=1e-5,
    batch_size=16,
    steps=1200,
    warmup=100,
    lr=2e-3,
    min_lr_frac=0.1,
    weight_decay=0.1,
    grad_clip=1.0,
    repeat_frac=0.1,   # share of corpus samples that are a text span repeated (copying on real text too)
    # Head scaffold (model card, "How the two heads were trained"): a batch of random
    # token sequences shown twice rides along with every corpus batch; head 0 of layer 0
    # is clamped to the previous-token pattern for the first clamp_steps steps, and an
    # auxiliary loss (aux_weight x -log p) asks it for that pattern afterwards and asks
    # head 0 of layer 1 for the induction pattern throughout.
    synth_batch=16,
    synth_len=121,       # BOS + random prefix + span + span
    synth_span_min=20,
    synth_span_max=60,
    clamp_steps=300,
    prev_head=(0, 0),
    induction_head=(1, 0),
    aux_weight=1.0,
    eval_every=100,
    eval_batches=8,
)
VAL_BOOKS = ("Jude", "Rev")  # held out: the last two books (~1.4% of the verses)


def log(msg):
    print(msg, flush=True)


# ---- Corpus ------------------------------------------------------------------
def stage_corpus(work):
    """Dump the KJV with the `bible` program (package bible-kjv; text: bible-kjv-text)."""
    raw = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], check=True, capture_output=True,
                         text=True, env={**os.environ, "COLUMNS": "100000"}).stdout
    chapters = {"train": [], "val": []}
    cur_key, cur = None, []
    n_verses = {"train": 0, "val": 0}
    for line in raw.splitlines():
        m = re.match(r"^([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)$", line)
        if not m:
            continue
        book, chap, text = m.group(1), m.group(2), m.group(4).strip()
        split = "val" if book in VAL_BOOKS else "train"
        key = (split, book, chap)
        if key != cur_key:
            if cur:
                chapters[cur_key[0]].append(cur)
            cur_key, cur = key, []
        cur.append(text)
        n_verses[split] += 1
    chapters[cur_key[0]].append(cur)
    os.makedirs(work, exist_ok=True)
    for split in ("train", "val"):
        # One chapter per line, verses joined by a space.
        with open(os.path.join(work, f"{split}.txt"), "w", encoding="utf-8") as f:
            for ch in chapters[split]:
                f.write(" ".join(ch) + "\n")
    # Verse-per-line file for the tokenizer trainer.
    with open(os.path.join(work, "train_verses.txt"), "w", encoding="utf-8") as f:
        for ch in chapters["train"]:
            for v in ch:
                f.write(v + "\n")
    log(f"corpus: {n_verses['train']} train verses ({len(chapters['train'])} chapters), "
        f"{n_verses['val']} val verses ({len(chapters['val'])} chapters: {', '.join(VAL_BOOKS)})")


# ---- Tokenizer -----------------------------------------------------------------
def stage_tokenizer(work):
    import sentencepiece as spm
    spm.SentencePieceTrainer.train(
        input=os.path.join(work, "train_verses.txt"),
        model_prefix=os.path.join(work, "tokenizer"),
        model_type="bpe",
        vocab_size=CFG["vocab_size"],
        byte_fallback=True,
        character_coverage=1.0,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        split_digits=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        input_sentence_size=0,
        shuffle_input_sentence=False,
        num_threads=1,
        minloglevel=2,
    )
    sp = load_sp(work)
    vocab = {"pieces": [], "scores": [], "types": [], "bos_id": sp.bos_id(), "eos_id": sp.eos_id(),
             "unk_id": sp.unk_id(), "add_space_prefix": True}
    for i in range(sp.get_piece_size()):
        vocab["pieces"].append(sp.id_to_piece(i))
        vocab["scores"].append(float(sp.get_score(i)))
        # llama.cpp token types: 1 normal, 2 unknown, 3 control, 6 byte
        t = 1
        if sp.is_unknown(i):
            t = 2
        elif sp.is_control(i):
            t = 3
        elif sp.is_byte(i):
            t = 6
        vocab["types"].append(t)
    with open(os.path.join(work, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False, indent=0)
    log(f"tokenizer: {sp.get_piece_size()} pieces, sha256(model)={sha256(os.path.join(work, 'tokenizer.model'))[:16]}")


def load_sp(work):
    import sentencepiece as spm
    return spm.SentencePieceProcessor(model_file=os.path.join(work, "tokenizer.model"))


def encode_split(work, split):
    """Token stream of a split: each chapter's tokens then EOS; plus verse start offsets."""
    sp = load_sp(work)
    ids, starts = [], []
    with open(os.path.join(work, f"{split}.txt"), encoding="utf-8") as f:
        for line in f:
            verses = line.rstrip("\n").split("\n")  # a chapter
            # Encode verse by verse: the pieces never cross the space before a word, so
            # the concatenation equals the encoding of the whole chapter.
            text = line.rstrip("\n")
            chapter_ids = sp.encode(text)
            # verse starts: positions of the pieces that begin a verse (after ". " etc.)
            starts.append(len(ids))
            ids.extend(chapter_ids)
            ids.append(sp.eos_id())
            del verses
    return torch.tensor(ids, dtype=torch.long), starts


# ---- Model ----------------------------------------------------------------------
class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(head_dim, n_pos, theta):
    inv = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    ang = torch.arange(n_pos, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x, cos, sin):
    """ggml's NORM RoPE (llama in GGUF): rotates adjacent pairs (x[2i], x[2i+1]).
    Training with this layout means the GGUF q/k rows need no permutation."""
    T = x.shape[-2]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    c, s = cos[:T], sin[:T]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)


def previous_token_pattern(T):
    """[T, T]: row i attends to i-1 (row 0 to itself)."""
    p = torch.zeros(T, T)
    p[0, 0] = 1.0
    p[torch.arange(1, T), torch.arange(0, T - 1)] = 1.0
    return p


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, h = c["dim"], c["n_heads"]
        self.h, self.hd = h, d // h
        self.attn_norm = RMSNorm(d, c["norm_eps"])
        self.wq = nn.Linear(d, d, bias=False)
        self.wk = nn.Linear(d, d, bias=False)
        self.wv = nn.Linear(d, d, bias=False)
        self.wo = nn.Linear(d, d, bias=False)
        self.ffn_norm = RMSNorm(d, c["norm_eps"])
        self.clamp_head = None  # training scaffold only: this head's pattern := previous token
        self.w_gate = nn.Linear(d, c["ffn_dim"], bias=False)
        self.w_up = nn.Linear(d, c["ffn_dim"], bias=False)
        self.w_down = nn.Linear(c["ffn_dim"], d, bias=False)

    def forward(self, x, cos, sin, mask, want_attn=False):
        B, T, D = x.shape
        xn = self.attn_norm(x)
        q = self.wq(xn).view(B, T, self.h, self.hd).transpose(1, 2)
        k = self.wk(xn).view(B, T, self.h, self.hd).transpose(1, 2)
        v = self.wv(xn).view(B, T, self.h, self.hd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd)
        s = s.masked_fill(mask[:T, :T], float("-inf"))
        p = torch.softmax(s, dim=-1)
        if self.clamp_head is not None:
            p = p.clone()
            p[:, self.clamp_head] = previous_token_pattern(T)
        o = (p @ v).transpose(1, 2).reshape(B, T, D)
        x = x + self.wo(o)
        xn = self.ffn_norm(x)
        x = x + self.w_down(F.silu(self.w_gate(xn)) * self.w_up(xn))
        return x, (p if want_attn else None)


class Llama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed = nn.Embedding(c["vocab_size"], c["dim"])
        self.blocks = nn.ModuleList([Block(c) for _ in range(c["n_layers"])])
        self.norm = RMSNorm(c["dim"], c["norm_eps"])
        cos, sin = rope_tables(c["dim"] // c["n_heads"], c["ctx"], c["rope_theta"])
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        mask = torch.triu(torch.ones(c["ctx"], c["ctx"], dtype=torch.bool), diagonal=1)
        self.register_buffer("mask", mask, persistent=False)
        self.apply(self._init)
        for b in self.blocks:  # GPT-2 style scaled init of the residual projections
            nn.init.normal_(b.wo.weight, std=0.02 / math.sqrt(2 * c["n_layers"]))
            nn.init.normal_(b.w_down.weight, std=0.02 / math.sqrt(2 * c["n_layers"]))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, idx, want_attn=False):
        x = self.embed(idx)
        attns = []
        for b in self.blocks:
            x, p = b(x, self.cos, self.sin, self.mask, want_attn)
            attns.append(p)
        logits = self.norm(x) @ self.embed.weight.t()  # tied output matrix
        return logits, attns


# ---- Data -----------------------------------------------------------------------
def make_batch(data, bos, gen, B, T, repeat_frac):
    """B samples of T tokens: BOS + T-1 corpus tokens from a random offset. With
    probability repeat_frac a sample is BOS + a span of corpus text repeated (so copying
    from earlier context pays off; see the model card)."""
    n = data.numel()
    xs = []
    for _ in range(B):
        off = int(torch.randint(0, n - T - 1, (1,), generator=gen))
        if repeat_frac > 0 and float(torch.rand(1, generator=gen)) < repeat_frac:
            L = int(torch.randint(8, (T - 1) // 2, (1,), generator=gen))
            span = data[off:off + L]
            body = torch.cat([span] * ((T - 1) // L + 1))[:T - 1]
        else:
            body = data[off:off + T - 1]
        xs.append(torch.cat([torch.tensor([bos]), body]))
    x = torch.stack(xs)
    return x


def make_synth_batch(gen, B):
    """B samples of synth_len tokens: BOS, a random prefix, then a random span of L
    ordinary pieces (ids 259.., no bytes or specials) twice, L in [synth_span_min,
    synth_span_max]. Returns x [B, synth_len] and the span lengths [B]; the first copy
    starts at synth_len - 2L."""
    c = CFG
    T, xs, lens = c["synth_len"], [], []
    for _ in range(B):
        L = int(torch.randint(c["synth_span_min"], c["synth_span_max"] + 1, (1,), generator=gen))
        span = torch.randint(259, c["vocab_size"], (L,), generator=gen)
        pre = torch.randint(259, c["vocab_size"], (T - 1 - 2 * L,), generator=gen)
        xs.append(torch.cat([torch.tensor([1]), pre, span, span]))
        lens.append(L)
    return torch.stack(xs), lens


def synth_losses(model, x, lens):
    """Loss on the second copy's tokens (the first copy is unpredictable noise), and the
    auxiliary attention losses of the scaffold (previous-token head, induction head)."""
    c = CFG
    logits, attns = model(x, want_attn=True)
    T = x.shape[1]
    b_idx, q_idx = [], []
    for b, L in enumerate(lens):
        s0 = T - 2 * L
        for j in range(L - 1):  # query: span[j]'s second occurrence; its next token is span[j+1]
            b_idx.append(b)
            q_idx.append(s0 + L + j)
    b_idx, q_idx = torch.tensor(b_idx), torch.tensor(q_idx)
    lens_t = torch.tensor(lens)[b_idx]
    copy_loss = F.cross_entropy(logits[b_idx, q_idx], x[b_idx, q_idx + 1])
    pl, ph = c["prev_head"]
    il, ih = c["induction_head"]
    rows = torch.arange(1, T)
    prev_p = attns[pl][:, ph][:, rows, rows - 1]                  # [B, T-1]
    ind_p = attns[il][:, ih][b_idx, q_idx, q_idx - lens_t + 1]     # the token after the first copy
    aux = -(torch.log(prev_p + 1e-6).mean() + torch.log(ind_p + 1e-6).mean())
    return copy_loss, aux


def lr_at(step):
    c = CFG
    if step < c["warmup"]:
        return c["lr"] * (step + 1) / c["warmup"]
    t = (step - c["warmup"]) / max(1, c["steps"] - c["warmup"])
    return c["lr"] * (c["min_lr_frac"] + (1 - c["min_lr_frac"]) * 0.5 * (1 + math.cos(math.pi * t)))


def loss_on(model, x):
    logits, _ = model(x)
    # do not score the prediction of the token after BOS (nothing to condition on but BOS)
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))


@torch.no_grad()
def evaluate(model, data, bos, n_batches, seed):
    """Mean loss over fixed windows (same windows at every evaluation)."""
    gen = torch.Generator().manual_seed(seed)
    model.eval()
    tot = 0.0
    for _ in range(n_batches):
        x = make_batch(data, bos, gen, CFG["batch_size"], CFG["ctx"], 0.0)
        tot += float(loss_on(model, x))
    model.train()
    return tot / n_batches


@torch.no_grad()
def head_scores(model, n_random=40, seed=7):
    """Per head: previous-token score (mean attention on i-1, rows i>=1, on a random
    repeated sequence's first half) and induction score (mean attention from n+i to i+1)."""
    gen = torch.Generator().manual_seed(seed)
    n = n_random
    r = torch.randint(259, CFG["vocab_size"], (n,), generator=gen)  # normal pieces only
    x = torch.cat([torch.tensor([1]), r, r])[None]
    model.eval()
    _, attns = model(x, want_attn=True)
    model.train()
    prev, ind = [], []
    for p in attns:
        p = p[0]  # [H, T, T]; token j of r sits at position 1+j
        rows = torch.arange(1, x.shape[1])
        prev.append(p[:, rows, rows - 1].mean(-1))
        q = torch.arange(1 + n + 1, 1 + 2 * n)            # second copy, r_i for i >= 1
        keys = q - n + 1                                   # first copy, the token after r_i
        ind.append(p[:, q, keys].mean(-1))
    return torch.stack(prev), torch.stack(ind)  # [L, H]


def stage_train(work, threads):
    torch.manual_seed(CFG["seed"])
    random.seed(CFG["seed"])
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)
    sp = load_sp(work)
    train_ids, _ = encode_split(work, "train")
    val_ids, _ = encode_split(work, "val")
    log(f"data: {train_ids.numel()} train tokens, {val_ids.numel()} val tokens "
        f"({100 * val_ids.numel() / (train_ids.numel() + val_ids.numel()):.2f}% held out)")
    log("config: " + json.dumps(CFG, sort_keys=True))
    model = Llama(CFG)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params} parameters, threads={threads}")
    decay = [p for n_, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n_, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": CFG["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=CFG["lr"], betas=(0.9, 0.95), eps=1e-8)
    gen = torch.Generator().manual_seed(CFG["seed"])
    clamp_layer, clamp_head = CFG["prev_head"]
    t0 = time.time()
    tr_acc, tr_n = 0.0, 0
    for step in range(CFG["steps"]):
        model.blocks[clamp_layer].clamp_head = clamp_head if step < CFG["clamp_steps"] else None
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        x = make_batch(train_ids, sp.bos_id(), gen, CFG["batch_size"], CFG["ctx"], CFG["repeat_frac"])
        loss = loss_on(model, x)
        xs, lens = make_synth_batch(gen, CFG["synth_batch"])
        copy_loss, aux = synth_losses(model, xs, lens)
        opt.zero_grad(set_to_none=True)
        (loss + copy_loss + CFG["aux_weight"] * aux).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CFG["grad_clip"])
        opt.step()
        tr_acc += float(loss)
        tr_n += 1
        last = step == CFG["steps"] - 1
        if (step + 1) % CFG["eval_every"] == 0 or last:
            scaffold = ""
            if model.blocks[clamp_layer].clamp_head is not None:
                scaffold = f" (with the clamp: {float(head_scores(model)[1].max()):.3f})"
                model.blocks[clamp_layer].clamp_head = None  # evaluate the model as exported
            vl = evaluate(model, val_ids, sp.bos_id(), CFG["eval_batches"], 99)
            prev, ind = head_scores(model)
            log(f"step {step + 1:5d} | lr {lr_at(step):.2e} | train loss {tr_acc / tr_n:.4f} | "
                f"val loss {vl:.4f} | copy loss {float(copy_loss):.3f} | best prev-token head "
                f"{float(prev.max()):.3f} | best induction head {float(ind.max()):.3f}{scaffold} | {time.time() - t0:.0f}s")
            tr_acc, tr_n = 0.0, 0
        elif (step + 1) % 10 == 0:
            log(f"step {step + 1:5d} | loss {float(loss):.4f} | copy {float(copy_loss):.3f} | "
                f"aux {float(aux):.3f} | {time.time() - t0:.0f}s")
    model.blocks[clamp_layer].clamp_head = None
    train_time = time.time() - t0
    final_train = evaluate(model, train_ids, sp.bos_id(), CFG["eval_batches"], 98)
    final_val = evaluate(model, val_ids, sp.bos_id(), CFG["eval_batches"], 99)
    log(f"final: train loss {final_train:.4f} | val loss {final_val:.4f} | "
        f"training time {train_time / 60:.1f} min")
    prev, ind = head_scores(model)
    for l in range(CFG["n_layers"]):
        log(f"  layer {l}: prev-token " + " ".join(f"{v:.3f}" for v in prev[l].tolist()) +
            " | induction " + " ".join(f"{v:.3f}" for v in ind[l].tolist()))
    save_weights(model, os.path.join(work, "weights.safetensors"))
    log(f"weights: sha256={sha256(os.path.join(work, 'weights.safetensors'))}")
    for prompt in ("In the beginning God", "And the LORD said unto Moses,"):
        log(f"sample: {prompt!r} -> {generate(model, sp, prompt, 40)!r}")


# ---- Weights I/O (safetensors, written by hand: Debian has no python3-safetensors) ----
def weight_map(model):
    """GGUF tensor names -> PyTorch tensors (nn.Linear weight [out, in] == GGUF ne [in, out])."""
    m = {"token_embd.weight": model.embed.weight, "output_norm.weight": model.norm.weight}
    for i, b in enumerate(model.blocks):
        p = f"blk.{i}."
        m.update({p + "attn_norm.weight": b.attn_norm.weight, p + "attn_q.weight": b.wq.weight,
                  p + "attn_k.weight": b.wk.weight, p + "attn_v.weight": b.wv.weight,
                  p + "attn_output.weight": b.wo.weight, p + "ffn_norm.weight": b.ffn_norm.weight,
                  p + "ffn_gate.weight": b.w_gate.weight, p + "ffn_up.weight": b.w_up.weight,
                  p + "ffn_down.weight": b.w_down.weight})
    return m


def save_weights(model, path):
    tensors = {k: v.detach().float() for k, v in weight_map(model).items()}
    write_safetensors(path, tensors, {k: str(v) for k, v in CFG.items()})


def load_weights(path):
    import numpy as np
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    dt = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "I64": np.int64, "U8": np.uint8}
    out = {}
    for k, v in header.items():
        a, b = v["data_offsets"]
        arr = np.frombuffer(raw[base + a:base + b], dtype=dt[v["dtype"]]).reshape(v["shape"])
        if v["dtype"] in ("F32", "F16"):
            arr = arr.astype(np.float32)
        out[k] = torch.from_numpy(arr.copy())
    return out, meta


def model_from_weights(path):
    w, meta = load_weights(path)
    c = dict(CFG)
    for k in c:
        if k in meta:
            if isinstance(c[k], (int, float)):  # the rest (tuples) only steer training
                c[k] = type(c[k])(float(meta[k]))
    model = Llama(c)
    for k, t in weight_map(model).items():
        t.data.copy_(w[k])
    model.eval()
    return model


@torch.no_grad()
def generate(model, sp, prompt, n):
    ids = [sp.bos_id()] + sp.encode(prompt)
    model.eval()
    for _ in range(n):
        logits, _ = model(torch.tensor([ids[-CFG["ctx"]:]]))
        nxt = int(logits[0, -1].argmax())
        if nxt == sp.eos_id():
            break
        ids.append(nxt)
    model.train()
    return sp.decode(ids[1:])


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---- Conversion + self-test -----------------------------------------------------
def stage_convert(work, build, out):
    exe = os.path.join(build, "tools", "attnscope-convert-demo")
    subprocess.run([exe, "--weights", os.path.join(work, "weights.safetensors"),
                    "--vocab", os.path.join(work, "vocab.json"), "--type", "F16",
                    "--name", "attnscope-demo-kjv", "-o", out], check=True)
    log(f"gguf: {out} {os.path.getsize(out)} bytes sha256={sha256(out)}")


SELFTEST_PROMPT = ("And the LORD spake unto Moses, saying, Speak unto the children of Israel, "
                   "and say unto them, Speak unto the children of Israel")


@torch.no_grad()
def stage_selftest(work, build, gguf, f16=True):
    """attnscope (C++) on the GGUF vs this PyTorch model (with the F16-rounded weights):
    tokens, greedy continuation, attention of every layer/head, and logits."""
    import numpy as np
    sp = load_sp(work)
    model = model_from_weights(os.path.join(work, "weights.safetensors"))
    if f16:
        for p in model.parameters():
            if p.dim() >= 2:
                p.data.copy_(p.data.half().float())
    exe = os.path.join(build, "attnscope")
    run = os.path.join(work, "selftest-run")
    subprocess.run(["rm", "-rf", run], check=True)
    n_gen = 12
    subprocess.run([exe, "capture", "-m", gguf, "-p", SELFTEST_PROMPT, "-n", str(n_gen), "-o", run,
                    "--precision", "f32", "-t", "1"], check=True, capture_output=True)
    st = os.path.join(work, "selftest.safetensors")
    subprocess.run([exe, "export", run, "-o", st], check=True, capture_output=True)
    man = json.load(open(os.path.join(run, "manifest.json")))
    cpp_ids = [t["id"] for t in man["tokens"]]
    py_ids = [sp.bos_id()] + sp.encode(SELFTEST_PROMPT)
    n_prompt = len(py_ids)
    assert cpp_ids[:n_prompt] == py_ids, f"tokenization differs:\n{cpp_ids[:n_prompt]}\n{py_ids}"
    x = torch.tensor([cpp_ids])
    logits, attns = model(x, want_attn=True)
    py_greedy = [int(t) for t in logits[0, n_prompt - 1:-1].argmax(-1)]
    ok = True
    if py_greedy[:n_gen] != cpp_ids[n_prompt:]:
        log(f"selftest: greedy tokens differ: python {py_greedy} vs attnscope {cpp_ids[n_prompt:]}")
        ok = False
    w, _ = load_weights(st)
    max_attn = 0.0
    for l, p in enumerate(attns):
        ours = p[0].numpy()
        theirs = w[f"attn.{l}"].numpy()
        T = theirs.shape[-1]
        max_attn = max(max_attn, float(np.abs(ours[:, :theirs.shape[1], :T] - theirs).max()))
    log(f"selftest: attnscope capture+export vs PyTorch: {len(cpp_ids)} tokens "
        f"({n_prompt} prompt + {len(cpp_ids) - n_prompt} greedy), max |attention difference| = {max_attn:.2e}")
    if max_attn > 1e-3:
        ok = False
    # Reference for tests/model/demo_model_test.cpp (logits + attention of the prompt).
    lg, at = model(torch.tensor([py_ids]), want_attn=True)
    ref_path = os.path.join(os.path.dirname(gguf), "demo-reference.safetensors")
    write_safetensors(ref_path, {"prompt_tokens": torch.tensor(py_ids, dtype=torch.int32),
                                 "last_logits": lg[0, -1].float(),
                                 "attention": torch.stack([a[0] for a in at]).float()},
                      {"prompt": SELFTEST_PROMPT, "gguf_sha256": sha256(gguf)})
    log(f"selftest: wrote {os.path.relpath(ref_path, REPO)}; running demo_model_test (logits, heads, text)")
    test = os.path.join(build, "tests", "model", "demo_model_test")
    if not os.path.exists(test):
        test = os.path.join(build, "tests", "demo_model_test")
    r = subprocess.run([test], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        if not line.startswith("[") and line.strip():
            log("  " + line)
    log("  " + (r.stdout.strip().splitlines() or ["(no output)"])[-1])
    if r.returncode != 0:
        ok = False
    log("selftest: " + ("PASS" if ok else "FAIL"))
    return ok


def write_safetensors(path, tensors, meta):
    dt = {torch.float32: "F32", torch.int32: "I32"}
    header, off, blobs = {"__metadata__": meta}, 0, []
    for k in sorted(tensors):
        v = tensors[k].contiguous()
        b = v.numpy().tobytes()
        header[k] = {"dtype": dt[v.dtype], "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["corpus", "tokenizer", "train", "convert", "selftest", "all"])
    ap.add_argument("--work", default=os.path.join(REPO, "build-demo", "demo-train"),
                    help="scratch directory (corpus, tokenizer, weights)")
    ap.add_argument("--build", default=os.path.join(REPO, "build-demo"),
                    help="CMake build directory with attnscope and tools/attnscope-convert-demo")
    ap.add_argument("--out", default=os.path.join(REPO, "models", "attnscope-demo-kjv-f16.gguf"))
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 = bit-exact)")
    ap.add_argument("--steps", type=int, default=None, help="override the step count (tests)")
    ap.add_argument("--repeat-frac", type=float, default=None)
    a = ap.parse_args()
    if a.steps is not None:
        CFG["steps"] = a.steps
    if a.repeat_frac is not None:
        CFG["repeat_frac"] = a.repeat_frac
    st = a.stage
    if st in ("corpus", "all"):
        stage_corpus(a.work)
    if st in ("tokenizer", "all"):
        stage_tokenizer(a.work)
    if st in ("train", "all"):
        stage_train(a.work, a.threads)
    if st in ("convert", "all"):
        stage_convert(a.work, a.build, a.out)
    if st in ("selftest", "all"):
        ok = stage_selftest(a.work, a.build, a.out)
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
