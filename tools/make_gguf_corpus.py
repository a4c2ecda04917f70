#!/usr/bin/env python3
"""Write the seed corpus of the GGUF fuzz target (tests/fuzz/corpus/gguf).

The seeds are small hand-built files (a few hundred bytes to a few KB):
valid v2 and v3 files that together use every value type, arrays (numeric,
string, nested), tensors of every supported layout family and a
non-default alignment, plus malformed files that stop the reader at
different checks. The fuzzer mutates from there. Deterministic: running
it again writes the same bytes.

usage: tools/make_gguf_corpus.py [OUT_DIR]   (default tests/fuzz/corpus/gguf)
"""
import os
import struct
import sys

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i",
          F32: "<f", BOOL: "<B", U64: "<Q", I64: "<q", F64: "<d"}
# ggml type: (block elements, block bytes)
TYPES = {"f32": (0, 1, 4), "f16": (1, 1, 2), "q4_0": (2, 32, 18),
         "q4_1": (3, 32, 20), "q5_0": (6, 32, 22), "q5_1": (7, 32, 24),
         "q8_0": (8, 32, 34), "q4_K": (12, 256, 144), "q5_K": (13, 256, 176),
         "q6_K": (14, 256, 210), "bf16": (30, 1, 2)}


def s(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack("<Q", len(b)) + b


def value(t, v):
    if t == STR:
        return s(v)
    if t == ARR:
        et, items = v
        out = struct.pack("<IQ", et, len(items))
        return out + b"".join(value(et, x) for x in items)
    return struct.pack(SCALAR[t], v)


def gguf(kvs, tensors=(), version=3, align=32, n_kv=None, n_t=None,
         cut=None):
    """kvs: [(key, type, value)]; tensors: [(name, type name, ne, offset
    or None)]. Tensor data is a deterministic byte pattern."""
    out = b"GGUF" + struct.pack("<IQQ", version,
                                len(tensors) if n_t is None else n_t,
                                len(kvs) if n_kv is None else n_kv)
    for k, t, v in kvs:
        out += s(k) + struct.pack("<I", t) + value(t, v)
    off = 0
    sizes = []
    for name, tn, ne, fixed in tensors:
        ggml, be, bb = TYPES[tn]
        rows = 1
        for d in ne[1:]:
            rows *= d
        size = ne[0] // be * bb * rows
        off = (off + align - 1) // align * align
        o = off if fixed is None else fixed
        out += s(name) + struct.pack("<I", len(ne))
        out += b"".join(struct.pack("<Q", d) for d in ne)
        out += struct.pack("<IQ", ggml, o)
        sizes.append((o, size))
        off += size
    if tensors:
        out += b"\0" * (-len(out) % align)
        end = max(o + n for o, n in sizes)
        out += bytes((i * 37 + 11) & 0xFF for i in range(end))
    return out[:cut] if cut is not None else out


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        root, "tests", "fuzz", "corpus", "gguf")
    os.makedirs(out_dir, exist_ok=True)

    scalars = [("u8", U8, 255), ("i8", I8, -128), ("u16", U16, 65535),
               ("i16", I16, -32768), ("u32", U32, 2**32 - 1),
               ("i32", I32, -2**31), ("f32", F32, 1.5), ("bool", BOOL, 1),
               ("str", STR, b"a\0b\xff"), ("empty", STR, b""),
               ("u64", U64, 2**64 - 1), ("i64", I64, -2**63),
               ("f64", F64, -1e300)]
    arrays = [("arr." + k, ARR, (t, [v, v] if t != STR else [v, b"", v]))
              for k, t, v in scalars] + [("arr.none", ARR, (U32, []))]
    tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % i for i in range(16)] + \
        ["\u2581the", "\u2581a", "in", "er", "\u2581\u2581"] * 4
    vocab = [("general.architecture", STR, "llama"),
             ("general.name", STR, "seed"),
             ("llama.context_length", U32, 128),
             ("llama.rope.freq_base", F32, 10000.0),
             ("tokenizer.ggml.model", STR, "llama"),
             ("tokenizer.ggml.tokens", ARR, (STR, tokens)),
             ("tokenizer.ggml.scores", ARR, (F32, [-float(i) for i in range(len(tokens))])),
             ("tokenizer.ggml.token_type", ARR, (I32, [2, 3, 3] + [6] * 16 + [1] * 20)),
             ("tokenizer.ggml.bos_token_id", U32, 1),
             ("tokenizer.ggml.add_bos_token", BOOL, 1)]
    tensors = [("token_embd.weight", "f32", [4, 3], None),
               ("blk.0.attn_norm.weight", "f16", [8], None),
               ("blk.0.attn_q.weight", "q4_0", [32, 2], None),
               ("blk.0.attn_k.weight", "q8_0", [64, 1, 2], None),
               ("blk.0.ffn_up.weight", "q4_K", [256, 2], None),
               ("blk.0.ffn_down.weight", "q6_K", [256], None),
               ("blk.0.ffn_gate.weight", "q5_0", [32, 1, 1, 2], None),
               ("output.weight", "bf16", [2, 2, 2], None)]
    nested = [("nest", ARR, (ARR, [(U32, [1, 2]), (STR, ["x", ""]), (ARR, [(U8, [7])])])),
              ("after", U16, 9)]
    two = tensors[:2]
    seeds = {
        "v3_empty.gguf": gguf([]),
        "v2_scalars.gguf": gguf(scalars, version=2),
        "v3_scalars.gguf": gguf(scalars),
        "v3_arrays.gguf": gguf(arrays),
        "v3_nested.gguf": gguf(nested),
        "v3_vocab.gguf": gguf(vocab),
        "v3_tensors.gguf": gguf(vocab[:2], tensors),
        "v2_tensors.gguf": gguf(vocab[:1], tensors[2:5], version=2),
        "v3_align64.gguf": gguf([("general.alignment", U32, 64)], two, align=64),
        "bad_v1.gguf": gguf(scalars[:3], version=1),
        "bad_truncated_tensor.gguf": gguf(vocab[:2], tensors, cut=-7),
        "bad_overlap.gguf": gguf([], [two[0], (two[1][0], "f16", [8], 32)]),
        "bad_dup_key.gguf": gguf(scalars[:2] + scalars[:1]),
        "bad_huge_counts.gguf": gguf(scalars[:2], n_kv=2**62, n_t=2**62),
        "bad_align_string.gguf": gguf([("general.alignment", STR, "32")], two),
        "bad_block_size.gguf": gguf([], [("w", "f32", [4], None),
                                         ("q", "q4_0", [32], None)])
                               .replace(struct.pack("<Q", 32), struct.pack("<Q", 48), 1),
    }
    for name, data in seeds.items():
        assert len(data) < 20000, name
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(seeds), out_dir))


if __name__ == "__main__":
    main()
