#!/usr/bin/env python3
"""Write a vocabulary-only GGUF (no tensors) from a Hugging Face tokenizer.json
holding a byte-level BPE model, laid out as llama.cpp's converter lays it out:

  tokenizer.ggml.model = "gpt2", tokenizer.ggml.pre = --pre,
  tokens in id order (ids missing from the file become "[PAD<id>]", unused),
  token_type: 1 normal; added tokens 3 control when marked special or when
  they look special (<|...|>, <｜...｜>, <pad>, <mask>, <unused...>), else
  4 user-defined; merges as "left right" strings in rank order;
  bos/eos/pad ids from tokenizer_config.json beside tokenizer.json, or, when
  there is none, the first control token spelled as usual (Qwen: all three
  are <|endoftext|>, as in llama.cpp's Qwen2 files).

  usage: vocab_from_tokenizer_json.py [--pre qwen2] [--arch qwen2]
                                      [--vocab-size N] tokenizer.json out.gguf

Needs the `gguf` package (pip install gguf). The output is written to a
temporary name and renamed, so a reader never sees half a file.
"""

import argparse
import json
import os
import sys


def looks_special(text):
    """llama.cpp's does_token_look_special."""
    if text in ("<pad>", "<mask>", "<2mass>", "[@BOS@]"):
        return True
    if text.startswith("<|") and text.endswith("|>"):
        return True
    if text.startswith("<\uff5c") and text.endswith("\uff5c>"):
        return True
    return text.startswith("<unused") and text.endswith(">")


def token_content(tok):
    """A tokenizer_config.json token entry: a string or {"content": ...}."""
    if isinstance(tok, dict):
        return tok.get("content")
    return tok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tokenizer_json")
    ap.add_argument("out")
    ap.add_argument("--pre", default="qwen2", help="tokenizer.ggml.pre (default qwen2)")
    ap.add_argument("--arch", default="qwen2", help="general.architecture (default qwen2)")
    ap.add_argument("--name", default=None, help="general.name")
    ap.add_argument("--vocab-size", type=int, default=0,
                    help="pad the vocabulary to this many tokens")
    args = ap.parse_args()

    try:
        import gguf
    except ImportError:
        sys.exit("vocab_from_tokenizer_json.py: the Python package 'gguf' is missing; "
                 "install it with: pip install gguf")

    try:
        with open(args.tokenizer_json, encoding="utf-8") as f:
            tj = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"{args.tokenizer_json}: cannot read: {e}")
    model = tj.get("model", {})
    if model.get("type") != "BPE" or "vocab" not in model or "merges" not in model:
        sys.exit(f"{args.tokenizer_json}: not a BPE tokenizer (model.type is "
                 f"{model.get('type')!r}); only byte-level BPE is converted")

    vocab = model["vocab"]
    added = {t["id"]: t for t in tj.get("added_tokens", [])}
    n = max(list(vocab.values()) + list(added.keys())) + 1
    if args.vocab_size:
        if args.vocab_size < n:
            sys.exit(f"--vocab-size {args.vocab_size} is smaller than the {n} ids in the file")
        n = args.vocab_size

    tokens = [None] * n
    types = [0] * n
    for text, i in vocab.items():
        tokens[i] = text
        types[i] = gguf.TokenType.NORMAL
    for i, t in added.items():
        text = t["content"]
        if t.get("special") or looks_special(text):
            types[i] = gguf.TokenType.CONTROL
        else:
            text = text.replace("\u2581", " ")
            types[i] = gguf.TokenType.USER_DEFINED
        tokens[i] = text
    for i in range(n):
        if tokens[i] is None:
            tokens[i] = f"[PAD{i}]"
            types[i] = gguf.TokenType.UNUSED

    merges = []
    for m in model["merges"]:
        merges.append(m if isinstance(m, str) else " ".join(m))

    ids = {text: i for i, text in enumerate(tokens)}
    cfg = {}
    cfg_path = os.path.join(os.path.dirname(os.path.abspath(args.tokenizer_json)),
                            "tokenizer_config.json")
    if os.path.exists(cfg_path):
        with open(cfg_path, encoding="utf-8") as f:
            cfg = json.load(f)

    def special_id(key, fallbacks):
        text = token_content(cfg.get(key))
        if text is not None:
            return ids.get(text)
        if cfg:
            return None
        for cand in fallbacks:  # only added (control) tokens qualify
            if cand in ids and types[ids[cand]] == gguf.TokenType.CONTROL:
                return ids[cand]
        return None

    bos = special_id("bos_token", ["<s>", "<|begin_of_text|>", "<|endoftext|>"])
    eos = special_id("eos_token", ["<|endoftext|>", "</s>", "<|end_of_text|>"])
    pad = special_id("pad_token", ["<|endoftext|>", "<pad>"])

    tmp = args.out + ".tmp"
    w = gguf.GGUFWriter(tmp, args.arch)
    w.add_name(args.name or os.path.basename(args.out))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(args.pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    if bos is not None:
        w.add_bos_token_id(bos)
    if eos is not None:
        w.add_eos_token_id(eos)
    if pad is not None:
        w.add_pad_token_id(pad)
    if "add_bos_token" in cfg:
        w.add_add_bos_token(bool(cfg["add_bos_token"]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()
    os.replace(tmp, args.out)
    print(f"{args.out}: {n} tokens, {len(merges)} merges, pre {args.pre}")


if __name__ == "__main__":
    main()
