#!/usr/bin/env python3
"""Golden sentence embeddings from sentence-transformers, the independent
reference seekfs's bert forward pass and WordPiece tokenizer are compared with.

For the Hugging Face folder of all-MiniLM-L6-v2 (as tools/fetch-models.sh
installs it) and a fixed set of 20 texts it:
  1. loads the folder with sentence-transformers on the CPU (float32);
  2. tokenizes each text exactly as SentenceTransformer.encode does
     (model.preprocess: [CLS] ... [SEP], truncated to max_seq_length = 256
     tokens, framing included) and keeps the ids;
  3. embeds each text alone (batch of one, so no padding takes part):
     BERT, mean pooling over the tokens, L2 normalisation;
  4. recomputes every vector from the safetensors weights and the same ids
     with a plain numpy BERT (erf GELU, LayerNorm eps from config.json, mean
     pooling, L2 normalisation) and fails unless the two agree to a cosine of
     0.99999: a check on the reference, and the formulas spelled out;
  5. writes tests/data/embed/all-MiniLM-L6-v2.golden.json.

The file, for a C reader (jansson): an object with "model", "dim" (384),
"max_tokens" (256), "pooling" ("mean"), "normalize" (true), "reference"
(versions) and "cases": an array of {"name", "text", "ids" (ints, [CLS] 101
first and [SEP] 102 last), "n_tokens_untruncated" (ids the text would have
without the 256 limit), "embedding" (dim floats, float32 values written with
up to 9 significant digits, so they read back exactly)}.

Usage:
  tools/golden_embed.py [--model DIR] [--out FILE]
Needs: sentence-transformers, torch, transformers, safetensors, numpy.
"""
import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import sys

import numpy as np

LONG_TEXT = (
    "A filesystem in userspace lets an ordinary program answer the calls that the kernel "
    "would otherwise send to a disk driver. When a process opens a file under the mount "
    "point, the kernel forwards the request through a character device to the daemon, "
    "which looks up the inode, checks permissions, and replies with a file handle. Reads "
    "and writes follow the same path, so the daemon decides what bytes a reader sees: they "
    "may come from a real file in a backing store, from memory, or from a computation that "
    "runs only when somebody asks. This makes it possible to expose a search index, a "
    "database, or even a language model as a tree of plain files that every shell tool "
    "already understands. The price is latency, because each operation crosses between "
    "kernel and user space twice, and correctness, because the daemon must keep the "
    "kernel's caches honest: when a file changes behind the kernel's back, the daemon has "
    "to invalidate the cached attributes and pages, or readers will see stale data. Good "
    "designs therefore keep the request threads short, hand slow work to background "
    "workers, and publish results atomically, for example by writing a temporary file and "
    "renaming it into place once it is complete. Documents copied into such a tree can be "
    "split into chunks, embedded as vectors, and stored alongside a full-text index, so "
    "that a question written into one file produces ranked passages and an answer in "
    "another. Each of these steps has failure modes worth testing: partial writes, editor "
    "swap files, renames across directories, crashes in the middle of a transaction, and "
    "clients that disappear while a long answer is still streaming out of the model."
)

MEDIUM_TEXT = (
    "Semantic search ranks passages by the meaning of a query rather than its exact words: "
    "the query and every chunk of every document are mapped to vectors, and the nearest "
    "vectors by cosine similarity are returned, often fused with a keyword ranking such "
    "as BM25 so that rare names and numbers still match."
)

# (name, text): short, long, punctuation, numbers, accents, non-Latin
# scripts, code, whitespace and near-empty input, an over-long word.
TEXTS = [
    ("short_word", "cat"),
    ("hello", "Hello, world!"),
    ("pangram", "The quick brown fox jumps over the lazy dog."),
    ("question", "How do I mount a FUSE filesystem without root privileges?"),
    ("medium", MEDIUM_TEXT),
    ("long_truncated", LONG_TEXT),
    ("numbers", "In 2023, revenue grew 17.5% to $4,200,000 (about 3.9e8 yen); call +1-555-0100 at 09:30."),
    ("punctuation", "Wait... what?!? -- (really) [yes] {no} <maybe> \"quoted\" 'single' #hash @user ~tilde^caret|pipe\\"),
    ("accents_fr_es", "Café naïve résumé: à la carte, señor, Ångström and Ærøskøbing."),
    ("german", "Größere Straßen führen über die Brücke nach Köln."),
    ("decomposed_accents", "Cafe\u0301 vs Caf\u00e9, zero\u200bwidth and soft\u00adhyphen, UPPERCASE and MiXeD CaSe."),
    ("chinese", "我想在苹果公司工作，今天天气很好。"),
    ("japanese", "東京は日本の首都です。カタカナとひらがなも使います。"),
    ("russian", "Привет, как дела? Это тест на кириллице."),
    ("arabic_hindi_greek", "مرحبا بالعالم. नमस्ते दुनिया। Καλημέρα κόσμε."),
    ("emoji", "I love pizza 🍕🍕 and rockets 🚀! ✅ done 😶\u200d🌫️"),
    ("python_code", "def add(a, b):\n    return a + b  # sum\n\nprint(add(2, 3))"),
    ("c_code", "int main(void) { printf(\"%d\\n\", x->y[0] >> 2); return 0; }"),
    ("whitespace_long_word", "   Leading\tand trailing   spaces\n\n"
     + "supercalifragilisticexpialidocious" * 4 + "   "),
    ("empty", ""),
]


def default_model_dir():
    root = os.environ.get("SEEKFS_MODELS",
                          os.path.expanduser("~/.local/share/seekfs/models"))
    return os.path.join(root, "hf", "all-MiniLM-L6-v2")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for blk in iter(lambda: f.read(1 << 20), b""):
            h.update(blk)
    return h.hexdigest()


def f32_list(v):
    # str of a float32 is the shortest string that reads back to it
    return [float(str(np.float32(x))) for x in v]


def numpy_bert(weights, cfg, ids):
    """The BERT encoder and sentence-transformers' mean pooling and
    normalisation, written out in numpy (float64 accumulation)."""
    W = {k[5:] if k.startswith("bert.") else k: v.astype(np.float64) for k, v in weights.items()
         if v.dtype.kind == "f"}
    eps = cfg.get("layer_norm_eps", 1e-12)
    n_head = cfg["num_attention_heads"]
    D = cfg["hidden_size"]
    hd = D // n_head

    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * W[p + ".weight"] + W[p + ".bias"]

    def lin(x, p):
        return x @ W[p + ".weight"].T + W[p + ".bias"]

    erf = np.vectorize(math.erf)
    n = len(ids)
    x = (W["embeddings.word_embeddings.weight"][ids]
         + W["embeddings.position_embeddings.weight"][:n]
         + W["embeddings.token_type_embeddings.weight"][0])
    x = ln(x, "embeddings.LayerNorm")
    for l in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{l}."
        q = lin(x, p + "attention.self.query").reshape(n, n_head, hd).transpose(1, 0, 2)
        k = lin(x, p + "attention.self.key").reshape(n, n_head, hd).transpose(1, 0, 2)
        v = lin(x, p + "attention.self.value").reshape(n, n_head, hd).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        a = (s @ v).transpose(1, 0, 2).reshape(n, D)
        x = ln(x + lin(a, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        h = lin(x, p + "intermediate.dense")
        h = 0.5 * h * (1.0 + erf(h / math.sqrt(2.0)))
        x = ln(x + lin(h, p + "output.dense"), p + "output.LayerNorm")
    e = x.mean(0)
    return e / max(np.linalg.norm(e), 1e-12)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=default_model_dir(),
                    help="the Hugging Face folder (default: %(default)s)")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "data", "embed",
                                                  "all-MiniLM-L6-v2.golden.json"))
    args = ap.parse_args()

    import safetensors
    import sentence_transformers
    import tokenizers
    import torch
    import transformers
    from safetensors.numpy import load_file
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    if not os.path.isfile(os.path.join(args.model, "model.safetensors")):
        sys.exit(f"{args.model}: no model.safetensors (run tools/fetch-models.sh minilm)")
    model = SentenceTransformer(args.model, device="cpu")
    model.eval()
    max_len = model.max_seq_length
    with open(os.path.join(args.model, "config.json")) as f:
        cfg = json.load(f)
    weights = load_file(os.path.join(args.model, "model.safetensors"))

    cases = []
    worst = 1.0
    for name, text in TEXTS:
        # what encode feeds the model (preprocess in sentence-transformers >= 5,
        # tokenize before)
        prep = getattr(model, "preprocess", None) or model.tokenize
        feats = prep([text])
        ids = feats["input_ids"][0].tolist()
        full = model.tokenizer(text, truncation=False)["input_ids"]
        with torch.no_grad():
            emb = model.encode([text], batch_size=1, convert_to_numpy=True,
                               normalize_embeddings=False)[0]
        ref = numpy_bert(weights, cfg, ids)
        cos = float(np.dot(emb, ref) / (np.linalg.norm(emb) * np.linalg.norm(ref)))
        worst = min(worst, cos)
        if cos < 0.99999:
            sys.exit(f"{name}: sentence-transformers and the numpy BERT disagree: cosine {cos}")
        cases.append({
            "name": name,
            "text": text,
            "ids": ids,
            "n_tokens_untruncated": len(full),
            "embedding": f32_list(emb),
        })
        print(f"{name:22s} {len(ids):4d} ids ({len(full)} untruncated)  |e|={np.linalg.norm(emb):.6f}"
              f"  cos(numpy)={cos:.8f}", file=sys.stderr)

    pooling = "mean"
    doc = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "model_safetensors_sha256": sha256_file(os.path.join(args.model, "model.safetensors")),
        "dim": int(emb.shape[0]),
        "max_tokens": int(max_len),
        "pooling": pooling,
        "normalize": True,
        "reference": {
            "how": "SentenceTransformer(dir, device='cpu').encode([text], batch_size=1); "
                   "ids from model.preprocess([text])",
            "date": datetime.date.today().isoformat(),
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "torch": torch.__version__,
            "safetensors": safetensors.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "numpy_bert_min_cosine": worst,
        },
        "cases": cases,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    # one case per line: readable diffs without a line per float
    head = json.dumps({k: v for k, v in doc.items() if k != "cases"}, ensure_ascii=False, indent=1)
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(head[:-2] + ',\n "cases": [\n')
        f.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in cases))
        f.write("\n ]\n}\n")
    os.replace(tmp, args.out)
    print(f"wrote {args.out}: {len(cases)} texts, min cosine to the numpy BERT {worst:.8f}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
