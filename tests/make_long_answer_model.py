#!/usr/bin/env python3
"""Write a tiny llama GGUF whose every generated token is one long word.

usage: make_long_answer_model.py OUT.gguf

One layer whose attention and feed-forward weights are zero, every token
embedding all ones, and an output matrix that is zero except for the row
of token LONG: whatever the prompt, the final hidden state is all ones and
token LONG has logit n_embd (64) against 0 for every other token, so it is
sampled at any temperature and end-of-sequence never is. Each token adds
len(WORD) + 1 bytes to the answer: 400 tokens make an answer of about
80 KB, in milliseconds. For tests/test_mount_long.sh.
"""
import sys

import numpy as np
from gguf import GGUFWriter, TokenType

WORD = "seekfs-" + "long-answer-" * 16  # 199 bytes, one token
E, FF, HEADS = 64, 64, 2


def main() -> None:
    w = GGUFWriter(sys.argv[1], "llama")
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + ["\u2581" + WORD]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL] + [TokenType.BYTE] * 256 + [TokenType.NORMAL]
    long_id = len(tokens) - 1
    w.add_name("long-answer test model")
    w.add_context_length(4096)
    w.add_embedding_length(E)
    w.add_block_count(1)
    w.add_feed_forward_length(FF)
    w.add_head_count(HEADS)
    w.add_head_count_kv(HEADS)
    w.add_rope_dimension_count(E // HEADS)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * len(tokens))
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    n = len(tokens)
    f = np.float32
    w.add_tensor("token_embd.weight", np.ones((n, E), f))
    w.add_tensor("output_norm.weight", np.ones(E, f))
    out = np.zeros((n, E), f)
    out[long_id] = 1.0
    w.add_tensor("output.weight", out)
    w.add_tensor("blk.0.attn_norm.weight", np.ones(E, f))
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(E, f))
    for name, shape in [("attn_q", (E, E)), ("attn_k", (E, E)), ("attn_v", (E, E)),
                        ("attn_output", (E, E)), ("ffn_gate", (FF, E)), ("ffn_up", (FF, E)),
                        ("ffn_down", (E, FF))]:
        w.add_tensor(f"blk.0.{name}.weight", np.zeros(shape, f))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
