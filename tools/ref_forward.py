#!/usr/bin/env python3
"""Reference forward pass for tests/test_forward.c: an independent numpy
implementation of the llama, qwen2 and gemma3 architectures in float64,
reading GGUF files the way llama.cpp does.

  tools/ref_forward.py GGUF_DIR [--out tests/data/forward]
      For every GGUF_DIR/*.gguf (written by `test_forward --write-only
      GGUF_DIR`), compute the logits of every position of TOKENS and write
      OUT/<name>.logits.
  tools/ref_forward.py --check-llama-cpp MODEL.gguf...
      Compare this implementation with llama.cpp (llama-cpp-python) on the
      same files and tokens, and print max|ref - llama.cpp| / max|llama.cpp|:
      evidence that the reference reads GGUF exactly as llama.cpp does.

Semantics followed (llama.cpp's llm_build_llama / llm_build_qwen2):
  - GGUF ne[0] is the input dimension: a weight with ne = {n_in, n_out} is
    read by gguf as an (n_out, n_in) array W, and y = W x. token_embd has
    ne = {n_embd, n_vocab}; row t is the embedding of token t.
  - weights are dequantised with gguf.quants.dequantize, then float64.
  - RMSNorm: x / sqrt(mean(x^2) + eps) * w.
  - q, k, v = Wq h (+ bq), ... (qwen2 has biases); RoPE on q and k per head
    with theta_i = pos * base^(-2i/n_rot): llama uses mode NORM, rotating
    the pairs (2i, 2i+1); qwen2 uses NEOX, rotating (i, i + n_rot/2). The
    GGUF holds q/k rows in the order llama.cpp's RoPE expects (for llama,
    convert_hf_to_gguf.py permutes Hugging Face's q/k rows so that NORM
    reproduces HF's rotate_half), so nothing is permuted here.
  - attention: softmax(q k^T / sqrt(head_dim)) with a causal mask; query
    head h reads KV head h // (n_head / n_head_kv) (GQA).
  - SwiGLU FFN: W_down (silu(W_gate h) * W_up h); residual adds around both.
  - output_norm, then output.weight, or token_embd.weight when the file
    has no output.weight (tied embeddings).
  gemma3 (llama.cpp's llm_build_gemma3_iswa, Google's gemma_pytorch):
  - the embedding row times sqrt(n_embd); head size attention.key_length;
  - q and k RMSNorm-ed per head (attn_q_norm, attn_k_norm) before the NEOX
    RoPE; queries scaled by 1/sqrt(head_dim) (1/sqrt(n_embd/n_head) for the
    62-layer 27B);
  - layer l with l % 6 < 5 attends over a sliding window: query i sees keys
    j with i - j < attention.sliding_window, and rotates with base 10000;
    the others see every earlier key and rotate with rope.freq_base and the
    linear rope.scaling.factor f (theta = pos / f * base^(-2i/n_rot));
  - the attention's output (after attn_output) and the feed-forward's
    (after ffn_down) RMSNorm-ed (post_attention_norm, post_ffw_norm) before
    the residual adds; the feed-forward is W_down (gelu(W_gate h) * W_up h)
    with GELU's tanh form; norm weights are used as stored (the GGUF
    already holds Gemma's 1 + w).

Golden file: one ASCII header line
  seekfs-forward-logits 1 model=NAME n_tokens=12 n_vocab=V tokens=a,b,...
  weights_crc32=XXXXXXXX
then n_tokens * n_vocab little-endian float32, token-major. weights_crc32 is
zlib's CRC-32 of all tensor data in file order: the test checks it to tell
"the quantiser changed" from "the forward pass is wrong".
"""
import argparse
import glob
import os
import sys
import zlib

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

# The sequence tests/test_forward.c runs (SEQ there).
TOKENS = [260, 84, 104, 101, 32, 113, 258, 255, 0, 7, 261, 128]


def field(r, key, default=None):
    f = r.fields.get(key)
    return default if f is None else f.contents()


class Model:
    def __init__(self, path):
        r = GGUFReader(path)
        self.path = path
        self.arch = field(r, "general.architecture")
        if self.arch not in ("llama", "qwen2", "gemma3"):
            raise SystemExit(f"{path}: architecture {self.arch} is not llama, qwen2 or gemma3")
        a = self.arch
        self.gemma = a == "gemma3"
        self.n_embd = int(field(r, f"{a}.embedding_length"))
        self.n_layer = int(field(r, f"{a}.block_count"))
        self.n_head = int(field(r, f"{a}.attention.head_count"))
        self.n_head_kv = int(field(r, f"{a}.attention.head_count_kv", self.n_head))
        self.head_dim = int(field(r, f"{a}.attention.key_length", self.n_embd // self.n_head))
        self.n_rot = int(field(r, f"{a}.rope.dimension_count", self.head_dim))
        self.base = float(field(r, f"{a}.rope.freq_base", 10000.0))
        self.eps = float(field(r, f"{a}.attention.layer_norm_rms_epsilon"))
        self.neox = a in ("qwen2", "gemma3")
        self.n_swa = int(field(r, f"{a}.attention.sliding_window", 0)) if self.gemma else 0
        stype = field(r, f"{a}.rope.scaling.type", "none")
        self.rope_factor = float(field(r, f"{a}.rope.scaling.factor", 1.0)) if stype == "linear" else 1.0
        if stype not in ("none", "linear"):
            raise SystemExit(f"{path}: rope scaling {stype} is not supported here")
        crc = 0
        self.w = {}
        for t in r.tensors:
            crc = zlib.crc32(np.ascontiguousarray(t.data).tobytes(), crc)
            shape = tuple(int(n) for n in reversed(t.shape))  # (n_out, n_in)
            x = dequantize(np.asarray(t.data), t.tensor_type)
            self.w[t.name] = x.reshape(shape).astype(np.float64)
        self.crc = crc & 0xFFFFFFFF
        if "rope_freqs.weight" in self.w:
            raise SystemExit(f"{path}: rope_freqs.weight is not supported here")
        self.n_vocab = self.w["token_embd.weight"].shape[0]

    def rmsnorm(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def rope(self, x, pos, base=None):
        """x: (T, heads, head_dim); rotated copy. pos may be fractional
        (linear scaling)."""
        x = x.copy()
        half = self.n_rot // 2
        i = np.arange(half, dtype=np.float64)
        base = self.base if base is None else base
        theta = pos[:, None] * base ** (-2.0 * i / self.n_rot)  # (T, half)
        c, s = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
        if self.neox:
            a, b = x[..., :half].copy(), x[..., half:self.n_rot].copy()
            x[..., :half] = a * c - b * s
            x[..., half:self.n_rot] = a * s + b * c
        else:
            a, b = x[..., 0:self.n_rot:2].copy(), x[..., 1:self.n_rot:2].copy()
            x[..., 0:self.n_rot:2] = a * c - b * s
            x[..., 1:self.n_rot:2] = a * s + b * c
        return x

    def forward(self, tokens):
        w = self.w
        T, H, K, D = len(tokens), self.n_head, self.n_head_kv, self.head_dim
        pos = np.arange(T, dtype=np.float64)
        mask = np.triu(np.full((T, T), -np.inf), 1)
        x = w["token_embd.weight"][tokens]
        if self.gemma:
            x = x * np.sqrt(self.n_embd)
        ii, jj = np.arange(T)[:, None], np.arange(T)[None, :]
        window = np.where(ii - jj >= self.n_swa, -np.inf, 0.0) if self.n_swa else 0.0
        qscale = 1.0 / np.sqrt(self.n_embd // H if self.n_layer == 62 else D)
        for l in range(self.n_layer):
            p = f"blk.{l}."
            swa = self.gemma and self.n_swa > 0 and l % 6 < 5
            h = self.rmsnorm(x, w[p + "attn_norm.weight"])
            q = h @ w[p + "attn_q.weight"].T
            k = h @ w[p + "attn_k.weight"].T
            v = h @ w[p + "attn_v.weight"].T
            if p + "attn_q.bias" in w:
                q = q + w[p + "attn_q.bias"]
                k = k + w[p + "attn_k.bias"]
                v = v + w[p + "attn_v.bias"]
            q, k = q.reshape(T, H, D), k.reshape(T, K, D)
            if self.gemma:
                q = self.rmsnorm(q, w[p + "attn_q_norm.weight"])
                k = self.rmsnorm(k, w[p + "attn_k_norm.weight"])
            if swa:
                q, k = self.rope(q, pos, 10000.0), self.rope(k, pos, 10000.0)
            else:
                q, k = self.rope(q, pos / self.rope_factor), self.rope(k, pos / self.rope_factor)
            v = v.reshape(T, K, D)
            out = np.empty((T, H, D))
            for hh in range(H):
                kv = hh // (H // K)
                s = q[:, hh] @ k[:, kv].T * qscale + mask + (window if swa else 0.0)
                s = np.exp(s - s.max(axis=1, keepdims=True))
                s /= s.sum(axis=1, keepdims=True)
                out[:, hh] = s @ v[:, kv]
            a = out.reshape(T, H * D) @ w[p + "attn_output.weight"].T
            if self.gemma:
                a = self.rmsnorm(a, w[p + "post_attention_norm.weight"])
            x = x + a
            h = self.rmsnorm(x, w[p + "ffn_norm.weight"])
            g = h @ w[p + "ffn_gate.weight"].T
            u = h @ w[p + "ffn_up.weight"].T
            if self.gemma:
                act = 0.5 * g * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (g + 0.044715 * g ** 3)))
            else:
                act = g / (1.0 + np.exp(-g))
            f = (act * u) @ w[p + "ffn_down.weight"].T
            if self.gemma:
                f = self.rmsnorm(f, w[p + "post_ffw_norm.weight"])
            x = x + f
        x = self.rmsnorm(x, w["output_norm.weight"])
        out_w = w.get("output.weight", w["token_embd.weight"])
        return x @ out_w.T  # (T, n_vocab)


def write_golden(model, name, logits, out_dir):
    T, V = logits.shape
    hdr = (f"seekfs-forward-logits 1 model={name} n_tokens={T} n_vocab={V} "
           f"tokens={','.join(str(t) for t in TOKENS)} "
           f"weights_crc32={model.crc:08x}\n")
    path = os.path.join(out_dir, name + ".logits")
    with open(path, "wb") as f:
        f.write(hdr.encode("ascii"))
        f.write(logits.astype("<f4").tobytes())
    return path


def llama_cpp_logits(path, tokens):
    import llama_cpp
    from llama_cpp import Llama

    # F32 KV cache and no flash attention: llama.cpp's most exact path.
    llm = Llama(model_path=path, n_ctx=max(32, len(tokens)), n_batch=len(tokens),
                n_threads=2, logits_all=True, type_k=llama_cpp.GGML_TYPE_F32,
                type_v=llama_cpp.GGML_TYPE_F32, flash_attn=False, verbose=False)
    llm.eval(tokens)
    return np.array(llm.scores[:len(tokens)], dtype=np.float64)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+", help="GGUF_DIR, or model files with --check-llama-cpp")
    ap.add_argument("--out", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "forward"))
    ap.add_argument("--check-llama-cpp", action="store_true")
    a = ap.parse_args()

    if a.check_llama_cpp:
        for path in a.inputs:
            m = Model(path)
            ref = m.forward(TOKENS)
            del m
            lc = llama_cpp_logits(path, TOKENS)
            err = np.abs(ref - lc).max() / np.abs(lc).max()
            same = int((ref.argmax(1) == lc.argmax(1)).sum())
            print(f"{os.path.basename(path):44s} max rel err vs llama.cpp {err:.3g}  "
                  f"argmax agrees {same}/{len(TOKENS)}")
        return

    if len(a.inputs) != 1 or not os.path.isdir(a.inputs[0]):
        sys.exit("give one folder of GGUF files (test_forward --write-only DIR)")
    files = sorted(glob.glob(os.path.join(a.inputs[0], "*.gguf")))
    if not files:
        sys.exit(f"{a.inputs[0]}: no .gguf files")
    os.makedirs(a.out, exist_ok=True)
    for path in files:
        name = os.path.basename(path)[:-5]
        m = Model(path)
        logits = m.forward(TOKENS)
        p = write_golden(m, name, logits, a.out)
        print(f"{p}: max|logit| {np.abs(logits).max():.3f} crc32 {m.crc:08x}")


if __name__ == "__main__":
    main()
