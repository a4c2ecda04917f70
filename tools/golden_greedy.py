#!/usr/bin/env python3
"""Golden greedy generations from llama.cpp (through llama-cpp-python), the
independent reference the seekfs forward pass, tokenizer and chat template
are compared with on real models.

For one GGUF and one user message it:
  1. renders the model's own chat template (tokenizer.chat_template, Jinja,
     add_generation_prompt=True) the way llama-cpp-python does (sandboxed
     Jinja2 with bos_token / eos_token defined); a GGUF converted without
     its template takes the one given with --template (the model family's
     published template, e.g. tests/data/chat/gemma3-it.jinja);
  2. tokenizes the rendered prompt with llama.cpp, special tokens parsed and
     BOS added only if the model asks for it (tokenizer.ggml.add_bos_token)
     and the rendered text does not already start with it;
  3. decodes greedily (argmax, no penalties) for --n-predict tokens with
     n_threads=2, evaluating one token per step and keeping every step's
     logits; generation does not stop at an end-of-generation token, so
     the file has the same length for every model (first_eog_step says
     where the model would have stopped);
  4. writes tests/data/golden/<model file stem>.greedy.json.

Per step the file keeps the chosen id, its logit and the runner-up's, so a
test can tell a real disagreement from a near tie (small margin) where
float rounding decides. Logits come from llama.cpp's CPU backend, which
quantises activations to 8 bits for quantised matrix products.

Usage:
  tools/golden_greedy.py MODEL.gguf [--prompt TEXT | --prompt-file FILE]
                         [--n-predict 128] [--n-ctx 512] [--template FILE.jinja]
                         [--tag TAG] [--out tests/data/golden]
The file is <model file stem>[.TAG].greedy.json.
"""
import argparse
import datetime
import hashlib
import json
import os
import sys

import numpy as np

DEFAULT_PROMPT = "What is the capital of France? Answer in one sentence."


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for blk in iter(lambda: f.read(1 << 20), b""):
            h.update(blk)
    return h.hexdigest()


def render_template(tmpl, messages, bos, eos):
    # The environment llama-cpp-python's Jinja2ChatFormatter uses.
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(loader=jinja2.BaseLoader(),
                                        trim_blocks=True, lstrip_blocks=True)

    def raise_exception(msg):
        raise jinja2.exceptions.TemplateError(msg)

    return env.from_string(tmpl).render(
        messages=messages, add_generation_prompt=True, bos_token=bos,
        eos_token=eos, raise_exception=raise_exception)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--prompt", default=DEFAULT_PROMPT)
    ap.add_argument("--n-predict", type=int, default=128)
    ap.add_argument("--template", help="Jinja chat template for a GGUF without one")
    ap.add_argument("--prompt-file", help="the user message, read from a file")
    ap.add_argument("--n-ctx", type=int, default=512)
    ap.add_argument("--tag", help="a second golden file of the same model: STEM.TAG.greedy.json")
    ap.add_argument("--out", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "golden"))
    a = ap.parse_args()

    import llama_cpp
    from llama_cpp import Llama

    if a.prompt_file:
        with open(a.prompt_file, encoding="utf-8") as f:
            a.prompt = f.read()
    llm = Llama(model_path=a.model, n_ctx=a.n_ctx, n_batch=a.n_ctx, n_threads=2,
                n_threads_batch=2, logits_all=True, seed=0, verbose=False)
    md = llm.metadata
    tmpl = md.get("tokenizer.chat_template")
    tmpl_source = "tokenizer.chat_template"
    if not tmpl and a.template:
        with open(a.template, encoding="utf-8") as f:
            tmpl = f.read()
        tmpl_source = os.path.basename(a.template)
    if not tmpl:
        sys.exit(f"{a.model}: no tokenizer.chat_template in the GGUF (give one with --template)")
    vocab = llama_cpp.llama_model_get_vocab(llm.model)

    def piece(i):
        return llm.detokenize([i], special=True).decode("utf-8", "replace")

    bos_id = llama_cpp.llama_vocab_bos(vocab)
    eos_id = llama_cpp.llama_vocab_eos(vocab)
    bos = piece(bos_id) if bos_id >= 0 else ""
    eos = piece(eos_id) if eos_id >= 0 else ""
    messages = [{"role": "user", "content": a.prompt}]
    text = render_template(tmpl, messages, bos, eos)
    # add_bos=True lets llama.cpp add BOS when, and only when, the model's
    # tokenizer.ggml.add_bos_token asks for it; a template that writes BOS
    # itself (Gemma's) already has it.
    add_bos = not (bos and text.startswith(bos))
    prompt_ids = llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    llm.reset()
    llm.eval(prompt_ids)
    gen, steps, first_eog = [], [], None
    for step in range(a.n_predict):
        logits = np.asarray(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        order = np.argsort(-logits, kind="stable")
        tok = int(order[0])
        steps.append({
            "id": tok,
            "logit": float(logits[tok]),
            "second_id": int(order[1]),
            "second_logit": float(logits[order[1]]),
        })
        gen.append(tok)
        if first_eog is None and llama_cpp.llama_vocab_is_eog(vocab, tok):
            first_eog = step
        if step + 1 < a.n_predict:
            llm.eval([tok])

    gen_text = llm.detokenize(gen, special=True).decode("utf-8", "replace")
    answer = (llm.detokenize(gen[:first_eog], special=False).decode("utf-8", "replace")
              if first_eog is not None else gen_text)
    name = os.path.basename(a.model)
    stem = name[:-5] if name.endswith(".gguf") else name
    out = {
        "model_file": name,
        "model_sha256": sha256_file(a.model),
        "general_name": md.get("general.name"),
        "architecture": md.get("general.architecture"),
        "tokenizer_pre": md.get("tokenizer.ggml.pre"),
        "chat_template": tmpl_source,
        "messages": messages,
        "add_generation_prompt": True,
        "prompt_text": text,
        "prompt_ids": [int(t) for t in prompt_ids],
        "n_predict": a.n_predict,
        "sampling": "greedy (argmax of raw logits, no penalties); "
                    "does not stop at end-of-generation tokens",
        "generated_ids": gen,
        "generated_text": gen_text,
        "first_eog_step": first_eog,
        "answer_text": answer,
        "steps": steps,
        "reference": {
            "llama_cpp_python": llama_cpp.__version__,
            "llama_cpp_commit": LLAMA_CPP_COMMITS.get(llama_cpp.__version__),
            "libllama": llama_cpp.llama_version().decode() if hasattr(
                llama_cpp, "llama_version") else None,
            "system_info": llama_cpp.llama_print_system_info().decode().strip(),
            "n_threads": 2,
            "n_ctx": a.n_ctx,
            "eval": "prompt in one batch, then one token per step",
        },
        "date": datetime.date.today().isoformat(),
    }
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, stem + (f".{a.tag}" if a.tag else "") + ".greedy.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"{path}: {len(prompt_ids)} prompt tokens, answer: {answer!r}")


# llama.cpp revision vendored by each llama-cpp-python release used here
# (read from its sdist: .git/modules/vendor/llama.cpp/HEAD).
LLAMA_CPP_COMMITS = {"0.3.36": "0c1e57098bba43ac29e6e3b677cdceebdd22334f"}

if __name__ == "__main__":
    main()
