#!/usr/bin/env python3
"""Render the chat-template goldens of tests/test_chat.c with jinja2.

Each template in tests/data/chat/ is a model's real tokenizer.chat_template
(tests/data/chat/SOURCES.md says where each came from). This script renders
the test conversations through them the way Hugging Face transformers'
apply_chat_template does (sandboxed environment, trim_blocks, lstrip_blocks,
loopcontrols, raise_exception, tojson, the model's bos/eos token text) and
writes the results as C string literals between the GOLDEN markers of
tests/test_chat.c, which then checks that chat_apply() writes the same bytes.

    python3 tools/render_chat_golden.py          # rewrite tests/test_chat.c
    python3 tools/render_chat_golden.py --check  # exit 1 if it is stale

Needs jinja2 (pip install jinja2).
"""
import argparse
import json
import os
import sys
from datetime import datetime

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data", "chat")
TEST = os.path.join(ROOT, "tests", "test_chat.c")
BEGIN = "/* ---- BEGIN GOLDEN: rendered by tools/render_chat_golden.py ---- */\n"
END = "/* ---- END GOLDEN ---- */\n"

# Conversations. A name starting "sys" opens with a system message.
CONVS = [
    ("sys_user", [
        ("system", "You are a helpful assistant."),
        ("user", "What is the capital of France?"),
    ]),
    ("user", [
        ("user", "Hello"),
    ]),
    ("sys_multi", [
        ("system", "Answer briefly."),
        ("user", "Hi"),
        ("assistant", "Hello! How can I help?"),
        ("user", "Name a prime."),
    ]),
    ("multi", [
        ("user", "Hi"),
        ("assistant", "Hello!"),
        ("user", "Bye"),
    ]),
    # Whitespace the templates strip (Python str.strip: Unicode spaces too).
    ("sys_space", [
        ("system", "  Be terse. \n"),
        ("user", " \t Tell me a joke.\n\n"),
        ("assistant", "  Sure:  a joke.  "),
        ("user", "\u3000again\u00a0\u2003"),
    ]),
    ("space", [
        ("user", "\n\nline one\nline two\r\n"),
    ]),
    # DeepSeek-R1 drops the reasoning of earlier assistant turns.
    ("think", [
        ("user", "2+2?"),
        ("assistant", "<think>\nEasy.</think>\n\n4"),
        ("user", "3+3?"),
    ]),
    ("sys_think2", [
        ("system", "Be exact."),
        ("user", "a"),
        ("assistant", "<think>x</think>y</think>z"),
        ("user", "b"),
    ]),
    # DeepSeek-R1 keeps only the last system message, placed first.
    ("two_sys", [
        ("user", "q1"),
        ("system", "late system"),
        ("user", "q2"),
    ]),
]

# (template file, family, bos, eos, conversations it is compared on).
# Qwen2.5 and SmolLM2 insert a default system prompt when the conversation
# has none, which chat_apply leaves to the caller: they are compared on
# conversations that start with a system message. Gemma 2 refuses system
# messages; Gemma 3 merges them into the first user turn.
WITH_SYS = ["sys_user", "sys_multi", "sys_space", "sys_think2"]
TEMPLATES = [
    ("openhermes-2.5-chatml.jinja", "CHAT_CHATML", None, None, None),
    ("qwen2.5-instruct.jinja", "CHAT_CHATML", None, "<|im_end|>", WITH_SYS),
    ("smollm2-instruct.jinja", "CHAT_CHATML", "<|im_start|>", "<|im_end|>", WITH_SYS),
    ("llama3-instruct.jinja", "CHAT_LLAMA3", "<|begin_of_text|>", "<|eot_id|>", None),
    ("deepseek-r1-distill.jinja", "CHAT_DEEPSEEK3",
     "<\uff5cbegin\u2581of\u2581sentence\uff5c>", "<\uff5cend\u2581of\u2581sentence\uff5c>", None),
    ("llama2-chat.jinja", "CHAT_LLAMA2", "<s>", "</s>", None),
    ("gemma2-it.jinja", "CHAT_GEMMA", "<bos>", "<eos>", None),
    ("gemma3-it.jinja", "CHAT_GEMMA", "<bos>", "<eos>", None),
]


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent,
                          separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def c_string(s, indent):
    """s as adjacent C string literals, one per line of text. Non-ASCII
    letters stay UTF-8; control and space-like characters become octal
    escapes (octal, unlike \\x, cannot swallow the next character)."""
    out, cur = [], ""
    for ch in s:
        if ch == "\n":
            cur += "\\n"
            out.append(cur)
            cur = ""
            continue
        if ch == "\\":
            cur += "\\\\"
        elif ch == '"':
            cur += '\\"'
        elif ch == "\t":
            cur += "\\t"
        elif ch == "\r":
            cur += "\\r"
        elif 0x20 <= ord(ch) < 0x7f or (ord(ch) >= 0xa0 and not ch.isspace()):
            cur += ch
        else:
            cur += "".join("\\%03o" % b for b in ch.encode("utf-8"))
    if cur or not out:
        out.append(cur)
    return ("\n" + indent).join('"%s"' % p for p in out)


def render_all():
    env = make_env()
    goldens = []
    for fname, family, bos, eos, only in TEMPLATES:
        with open(os.path.join(DATA, fname), encoding="utf-8") as f:
            tmpl = env.from_string(f.read())
        for ci, (cname, conv) in enumerate(CONVS):
            if only is not None and cname not in only:
                continue
            for add_gen in (True, False):
                kw = {"messages": [{"role": r, "content": c} for r, c in conv],
                      "add_generation_prompt": add_gen, "tools": None,
                      "documents": None}
                if bos is not None:
                    kw["bos_token"] = bos
                if eos is not None:
                    kw["eos_token"] = eos
                try:
                    text = tmpl.render(**kw)
                except jinja2.exceptions.TemplateError:
                    continue  # the template refuses this conversation
                goldens.append((fname, family, ci, cname, add_gen, text))
    return goldens


def emit(goldens):
    lines = [BEGIN]
    for ci, (cname, conv) in enumerate(CONVS):
        lines.append("static const struct chat_msg conv_%s[] = {\n" % cname)
        for role, content in conv:
            lines.append('\t{ "%s", %s },\n' % (role, c_string(content, "\t  ")))
        lines.append("};\n")
    lines.append("\nstatic const struct conv convs[] = {\n")
    for cname, conv in CONVS:
        lines.append('\t{ "%s", conv_%s, %d },\n' % (cname, cname, len(conv)))
    lines.append("};\n\nstatic const struct golden goldens[] = {\n")
    for fname, family, ci, cname, add_gen, text in goldens:
        lines.append('\t{ "%s", %s, %d, %d,\n\t  %s },\n'
                     % (fname, family, ci, 1 if add_gen else 0, c_string(text, "\t  ")))
    lines.append("};\n")
    lines.append(END)
    return "".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="only check that tests/test_chat.c is up to date")
    args = ap.parse_args()
    block = emit(render_all())
    with open(TEST, encoding="utf-8") as f:
        src = f.read()
    a, b = src.find(BEGIN), src.find(END)
    if a < 0 or b < a:
        sys.exit("%s: GOLDEN markers not found" % TEST)
    new = src[:a] + block + src[b + len(END):]
    if args.check:
        if new != src:
            sys.exit("%s: goldens are stale; run %s" % (TEST, sys.argv[0]))
        return
    if new != src:
        with open(TEST, "w", encoding="utf-8") as f:
            f.write(new)


if __name__ == "__main__":
    main()
