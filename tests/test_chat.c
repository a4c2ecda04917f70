/*
 * Chat templates: chat_apply() must write exactly what each model's real
 * Jinja template renders (goldens below, rendered with jinja2 from the
 * templates in tests/data/chat/ by tools/render_chat_golden.py), and
 * chat_detect() must recognise the family of each real template text.
 */
#include <errno.h>

#include "engine/engine.h"
#include "testutil.h"

struct conv {
	const char *name;
	const struct chat_msg *msgs;
	int n;
};

struct golden {
	const char *tmpl_file; /* in tests/data/chat/ */
	enum chat_tmpl t;
	int conv;              /* index into convs[] */
	int add_assistant;
	const char *want;
};

/* ---- BEGIN GOLDEN: rendered by tools/render_chat_golden.py ---- */
static const struct chat_msg conv_sys_user[] = {
	{ "system", "You are a helpful assistant." },
	{ "user", "What is the capital of France?" },
};
static const struct chat_msg conv_user[] = {
	{ "user", "Hello" },
};
static const struct chat_msg conv_sys_multi[] = {
	{ "system", "Answer briefly." },
	{ "user", "Hi" },
	{ "assistant", "Hello! How can I help?" },
	{ "user", "Name a prime." },
};
static const struct chat_msg conv_multi[] = {
	{ "user", "Hi" },
	{ "assistant", "Hello!" },
	{ "user", "Bye" },
};
static const struct chat_msg conv_sys_space[] = {
	{ "system", "  Be terse. \n" },
	{ "user", " \t Tell me a joke.\n"
	  "\n" },
	{ "assistant", "  Sure:  a joke.  " },
	{ "user", "\343\200\200again\302\240\342\200\203" },
};
static const struct chat_msg conv_space[] = {
	{ "user", "\n"
	  "\n"
	  "line one\n"
	  "line two\r\n" },
};
static const struct chat_msg conv_think[] = {
	{ "user", "2+2?" },
	{ "assistant", "<think>\n"
	  "Easy.</think>\n"
	  "\n"
	  "4" },
	{ "user", "3+3?" },
};
static const struct chat_msg conv_sys_think2[] = {
	{ "system", "Be exact." },
	{ "user", "a" },
	{ "assistant", "<think>x</think>y</think>z" },
	{ "user", "b" },
};
static const struct chat_msg conv_two_sys[] = {
	{ "user", "q1" },
	{ "system", "late system" },
	{ "user", "q2" },
};

static const struct conv convs[] = {
	{ "sys_user", conv_sys_user, 2 },
	{ "user", conv_user, 1 },
	{ "sys_multi", conv_sys_multi, 4 },
	{ "multi", conv_multi, 3 },
	{ "sys_space", conv_sys_space, 4 },
	{ "space", conv_space, 1 },
	{ "think", conv_think, 3 },
	{ "sys_think2", conv_sys_think2, 4 },
	{ "two_sys", conv_two_sys, 3 },
};

static const struct golden goldens[] = {
	{ "openhermes-2.5-chatml.jinja", CHAT_CHATML, 0, 1,
	  "<|im_start|>system\n"
	  "You are a helpful assistant.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "What is the capital of France?<|im_end|>\n"
	  "<|im_start|>assistant\n" },
	{ "openhermes-2.5-chatml.jinja", CHAT_CHATML, 0, 0,
	  "<|im_start|>system\n"
	  "You are a helpful assistant.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "What is the capital of France?<|im_end|>\n" },
	{ "openhermes-2.5-chatml.jinja", CHAT_CHATML, 1, 1,
	  "<|im_start|>user\n"
	  "Hello<|im_end|>\n"
	  "<|im_start|>assistant\n" },
	{ "openhermes-2.5-chatml.jinja", CHAT_CHATML, 1, 0,
	  "<|im_start|>user\n"
	  "Hello<|im_end|>\n" },
	{ "openhermes-2.5-chatml.jinja", CHAT_CHATML, 2, 1,
	  "<|im_start|>system\n"
	  "Answer briefly.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "Hi<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "Hello! How can I help?<|im_end|>\n"
	  "<|im_start|>user\n"
	  "Name a prime.<|im_end|>\n"
	  "<|im_start|>assistant\n" },
	{ "openhermes-2.5-chatml.jinja", CHAT_CHATML, 2, 0,
	  "<|im_start|>system\n"
	  "Answer briefly.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "Hi<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "Hello! How can I help?<|im_end|>\n"
	  "<|im_start|>user\n"
	  "Name a prime.<|im_end|>\n" },
	{ "openhermes-2.5-chatml.jinja", CHAT_CHATML, 3, 1,
	  "<|im_start|>user\n"
	  "Hi<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "Hello!<|im_end|>\n"
	  "<|im_start|>user\n"
	  "Bye<|im_end|>\n"
	  "<|im_start|>assistant\n" },
	{ "openhermes-2.5-chatml.jinja", CHAT_CHATML, 3, 0,
	  "<|im_start|>user\n"
	  "Hi<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "Hello!<|im_end|>\n"
	  "<|im_start|>user\n"
	  "Bye<|im_end|>\n" },
	{ "openhermes-2.5-chatml.jinja", CHAT_CHATML, 4, 1,
	  "<|im_start|>system\n"
	  "  Be terse. \n"
	  "<|im_end|>\n"
	  "<|im_start|>user\n"
	  " \t Tell me a joke.\n"
	  "\n"
	  "<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "  Sure:  a joke.  <|im_end|>\n"
	  "<|im_start|>user\n"
	  "\343\200\200again\302\240\342\200\203<|im_end|>\n"
	  "<|im_start|>assistant\n" },
	{ "openhermes-2.5-chatml.jinja", CHAT_CHATML, 4, 0,
	  "<|im_start|>system\n"
	  "  Be terse. \n"
	  "<|im_end|>\n"
	  "<|im_start|>user\n"
	  " \t Tell me a joke.\n"
	  "\n"
	  "<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "  Sure:  a joke.  <|im_end|>\n"
	  "<|im_start|>user\n"
	  "\343\200\200again\302\240\342\200\203<|im_end|>\n" },
	{ "openhermes-2.5-chatml.jinja", CHAT_CHATML, 5, 1,
	  "<|im_start|>user\n"
	  "\n"
	  "\n"
	  "line one\n"
	  "line two\r\n"
	  "<|im_end|>\n"
	  "<|im_start|>assistant\n" },
	{ "openhermes-2.5-chatml.jinja", CHAT_CHATML, 5, 0,
	  "<|im_start|>user\n"
	  "\n"
	  "\n"
	  "line one\n"
	  "line two\r\n"
	  "<|im_end|>\n" },
	{ "openhermes-2.5-chatml.jinja", CHAT_CHATML, 6, 1,
	  "<|im_start|>user\n"
	  "2+2?<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "<think>\n"
	  "Easy.</think>\n"
	  "\n"
	  "4<|im_end|>\n"
	  "<|im_start|>user\n"
	  "3+3?<|im_end|>\n"
	  "<|im_start|>assistant\n" },
	{ "openhermes-2.5-chatml.jinja", CHAT_CHATML, 6, 0,
	  "<|im_start|>user\n"
	  "2+2?<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "<think>\n"
	  "Easy.</think>\n"
	  "\n"
	  "4<|im_end|>\n"
	  "<|im_start|>user\n"
	  "3+3?<|im_end|>\n" },
	{ "openhermes-2.5-chatml.jinja", CHAT_CHATML, 7, 1,
	  "<|im_start|>system\n"
	  "Be exact.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "a<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "<think>x</think>y</think>z<|im_end|>\n"
	  "<|im_start|>user\n"
	  "b<|im_end|>\n"
	  "<|im_start|>assistant\n" },
	{ "openhermes-2.5-chatml.jinja", CHAT_CHATML, 7, 0,
	  "<|im_start|>system\n"
	  "Be exact.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "a<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "<think>x</think>y</think>z<|im_end|>\n"
	  "<|im_start|>user\n"
	  "b<|im_end|>\n" },
	{ "openhermes-2.5-chatml.jinja", CHAT_CHATML, 8, 1,
	  "<|im_start|>user\n"
	  "q1<|im_end|>\n"
	  "<|im_start|>system\n"
	  "late system<|im_end|>\n"
	  "<|im_start|>user\n"
	  "q2<|im_end|>\n"
	  "<|im_start|>assistant\n" },
	{ "openhermes-2.5-chatml.jinja", CHAT_CHATML, 8, 0,
	  "<|im_start|>user\n"
	  "q1<|im_end|>\n"
	  "<|im_start|>system\n"
	  "late system<|im_end|>\n"
	  "<|im_start|>user\n"
	  "q2<|im_end|>\n" },
	{ "qwen2.5-instruct.jinja", CHAT_CHATML, 0, 1,
	  "<|im_start|>system\n"
	  "You are a helpful assistant.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "What is the capital of France?<|im_end|>\n"
	  "<|im_start|>assistant\n" },
	{ "qwen2.5-instruct.jinja", CHAT_CHATML, 0, 0,
	  "<|im_start|>system\n"
	  "You are a helpful assistant.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "What is the capital of France?<|im_end|>\n" },
	{ "qwen2.5-instruct.jinja", CHAT_CHATML, 2, 1,
	  "<|im_start|>system\n"
	  "Answer briefly.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "Hi<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "Hello! How can I help?<|im_end|>\n"
	  "<|im_start|>user\n"
	  "Name a prime.<|im_end|>\n"
	  "<|im_start|>assistant\n" },
	{ "qwen2.5-instruct.jinja", CHAT_CHATML, 2, 0,
	  "<|im_start|>system\n"
	  "Answer briefly.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "Hi<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "Hello! How can I help?<|im_end|>\n"
	  "<|im_start|>user\n"
	  "Name a prime.<|im_end|>\n" },
	{ "qwen2.5-instruct.jinja", CHAT_CHATML, 4, 1,
	  "<|im_start|>system\n"
	  "  Be terse. \n"
	  "<|im_end|>\n"
	  "<|im_start|>user\n"
	  " \t Tell me a joke.\n"
	  "\n"
	  "<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "  Sure:  a joke.  <|im_end|>\n"
	  "<|im_start|>user\n"
	  "\343\200\200again\302\240\342\200\203<|im_end|>\n"
	  "<|im_start|>assistant\n" },
	{ "qwen2.5-instruct.jinja", CHAT_CHATML, 4, 0,
	  "<|im_start|>system\n"
	  "  Be terse. \n"
	  "<|im_end|>\n"
	  "<|im_start|>user\n"
	  " \t Tell me a joke.\n"
	  "\n"
	  "<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "  Sure:  a joke.  <|im_end|>\n"
	  "<|im_start|>user\n"
	  "\343\200\200again\302\240\342\200\203<|im_end|>\n" },
	{ "qwen2.5-instruct.jinja", CHAT_CHATML, 7, 1,
	  "<|im_start|>system\n"
	  "Be exact.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "a<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "<think>x</think>y</think>z<|im_end|>\n"
	  "<|im_start|>user\n"
	  "b<|im_end|>\n"
	  "<|im_start|>assistant\n" },
	{ "qwen2.5-instruct.jinja", CHAT_CHATML, 7, 0,
	  "<|im_start|>system\n"
	  "Be exact.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "a<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "<think>x</think>y</think>z<|im_end|>\n"
	  "<|im_start|>user\n"
	  "b<|im_end|>\n" },
	{ "smollm2-instruct.jinja", CHAT_CHATML, 0, 1,
	  "<|im_start|>system\n"
	  "You are a helpful assistant.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "What is the capital of France?<|im_end|>\n"
	  "<|im_start|>assistant\n" },
	{ "smollm2-instruct.jinja", CHAT_CHATML, 0, 0,
	  "<|im_start|>system\n"
	  "You are a helpful assistant.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "What is the capital of France?<|im_end|>\n" },
	{ "smollm2-instruct.jinja", CHAT_CHATML, 2, 1,
	  "<|im_start|>system\n"
	  "Answer briefly.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "Hi<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "Hello! How can I help?<|im_end|>\n"
	  "<|im_start|>user\n"
	  "Name a prime.<|im_end|>\n"
	  "<|im_start|>assistant\n" },
	{ "smollm2-instruct.jinja", CHAT_CHATML, 2, 0,
	  "<|im_start|>system\n"
	  "Answer briefly.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "Hi<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "Hello! How can I help?<|im_end|>\n"
	  "<|im_start|>user\n"
	  "Name a prime.<|im_end|>\n" },
	{ "smollm2-instruct.jinja", CHAT_CHATML, 4, 1,
	  "<|im_start|>system\n"
	  "  Be terse. \n"
	  "<|im_end|>\n"
	  "<|im_start|>user\n"
	  " \t Tell me a joke.\n"
	  "\n"
	  "<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "  Sure:  a joke.  <|im_end|>\n"
	  "<|im_start|>user\n"
	  "\343\200\200again\302\240\342\200\203<|im_end|>\n"
	  "<|im_start|>assistant\n" },
	{ "smollm2-instruct.jinja", CHAT_CHATML, 4, 0,
	  "<|im_start|>system\n"
	  "  Be terse. \n"
	  "<|im_end|>\n"
	  "<|im_start|>user\n"
	  " \t Tell me a joke.\n"
	  "\n"
	  "<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "  Sure:  a joke.  <|im_end|>\n"
	  "<|im_start|>user\n"
	  "\343\200\200again\302\240\342\200\203<|im_end|>\n" },
	{ "smollm2-instruct.jinja", CHAT_CHATML, 7, 1,
	  "<|im_start|>system\n"
	  "Be exact.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "a<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "<think>x</think>y</think>z<|im_end|>\n"
	  "<|im_start|>user\n"
	  "b<|im_end|>\n"
	  "<|im_start|>assistant\n" },
	{ "smollm2-instruct.jinja", CHAT_CHATML, 7, 0,
	  "<|im_start|>system\n"
	  "Be exact.<|im_end|>\n"
	  "<|im_start|>user\n"
	  "a<|im_end|>\n"
	  "<|im_start|>assistant\n"
	  "<think>x</think>y</think>z<|im_end|>\n"
	  "<|im_start|>user\n"
	  "b<|im_end|>\n" },
	{ "llama3-instruct.jinja", CHAT_LLAMA3, 0, 1,
	  "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n"
	  "\n"
	  "You are a helpful assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "What is the capital of France?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
	  "\n" },
	{ "llama3-instruct.jinja", CHAT_LLAMA3, 0, 0,
	  "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n"
	  "\n"
	  "You are a helpful assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "What is the capital of France?<|eot_id|>" },
	{ "llama3-instruct.jinja", CHAT_LLAMA3, 1, 1,
	  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "Hello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
	  "\n" },
	{ "llama3-instruct.jinja", CHAT_LLAMA3, 1, 0,
	  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "Hello<|eot_id|>" },
	{ "llama3-instruct.jinja", CHAT_LLAMA3, 2, 1,
	  "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n"
	  "\n"
	  "Answer briefly.<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "Hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
	  "\n"
	  "Hello! How can I help?<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "Name a prime.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
	  "\n" },
	{ "llama3-instruct.jinja", CHAT_LLAMA3, 2, 0,
	  "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n"
	  "\n"
	  "Answer briefly.<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "Hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
	  "\n"
	  "Hello! How can I help?<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "Name a prime.<|eot_id|>" },
	{ "llama3-instruct.jinja", CHAT_LLAMA3, 3, 1,
	  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "Hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
	  "\n"
	  "Hello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "Bye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
	  "\n" },
	{ "llama3-instruct.jinja", CHAT_LLAMA3, 3, 0,
	  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "Hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
	  "\n"
	  "Hello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "Bye<|eot_id|>" },
	{ "llama3-instruct.jinja", CHAT_LLAMA3, 4, 1,
	  "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n"
	  "\n"
	  "Be terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "Tell me a joke.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
	  "\n"
	  "Sure:  a joke.<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "again<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
	  "\n" },
	{ "llama3-instruct.jinja", CHAT_LLAMA3, 4, 0,
	  "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n"
	  "\n"
	  "Be terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "Tell me a joke.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
	  "\n"
	  "Sure:  a joke.<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "again<|eot_id|>" },
	{ "llama3-instruct.jinja", CHAT_LLAMA3, 5, 1,
	  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "line one\n"
	  "line two<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
	  "\n" },
	{ "llama3-instruct.jinja", CHAT_LLAMA3, 5, 0,
	  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "line one\n"
	  "line two<|eot_id|>" },
	{ "llama3-instruct.jinja", CHAT_LLAMA3, 6, 1,
	  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
	  "\n"
	  "<think>\n"
	  "Easy.</think>\n"
	  "\n"
	  "4<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "3+3?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
	  "\n" },
	{ "llama3-instruct.jinja", CHAT_LLAMA3, 6, 0,
	  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
	  "\n"
	  "<think>\n"
	  "Easy.</think>\n"
	  "\n"
	  "4<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "3+3?<|eot_id|>" },
	{ "llama3-instruct.jinja", CHAT_LLAMA3, 7, 1,
	  "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n"
	  "\n"
	  "Be exact.<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "a<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
	  "\n"
	  "<think>x</think>y</think>z<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "b<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
	  "\n" },
	{ "llama3-instruct.jinja", CHAT_LLAMA3, 7, 0,
	  "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n"
	  "\n"
	  "Be exact.<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "a<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
	  "\n"
	  "<think>x</think>y</think>z<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "b<|eot_id|>" },
	{ "llama3-instruct.jinja", CHAT_LLAMA3, 8, 1,
	  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "q1<|eot_id|><|start_header_id|>system<|end_header_id|>\n"
	  "\n"
	  "late system<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "q2<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
	  "\n" },
	{ "llama3-instruct.jinja", CHAT_LLAMA3, 8, 0,
	  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "q1<|eot_id|><|start_header_id|>system<|end_header_id|>\n"
	  "\n"
	  "late system<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
	  "\n"
	  "q2<|eot_id|>" },
	{ "deepseek-r1-distill.jinja", CHAT_DEEPSEEK3, 0, 1,
	  "<｜begin▁of▁sentence｜>You are a helpful assistant.<｜User｜>What is the capital of France?<｜Assistant｜>" },
	{ "deepseek-r1-distill.jinja", CHAT_DEEPSEEK3, 0, 0,
	  "<｜begin▁of▁sentence｜>You are a helpful assistant.<｜User｜>What is the capital of France?" },
	{ "deepseek-r1-distill.jinja", CHAT_DEEPSEEK3, 1, 1,
	  "<｜begin▁of▁sentence｜><｜User｜>Hello<｜Assistant｜>" },
	{ "deepseek-r1-distill.jinja", CHAT_DEEPSEEK3, 1, 0,
	  "<｜begin▁of▁sentence｜><｜User｜>Hello" },
	{ "deepseek-r1-distill.jinja", CHAT_DEEPSEEK3, 2, 1,
	  "<｜begin▁of▁sentence｜>Answer briefly.<｜User｜>Hi<｜Assistant｜>Hello! How can I help?<｜end▁of▁sentence｜><｜User｜>Name a prime.<｜Assistant｜>" },
	{ "deepseek-r1-distill.jinja", CHAT_DEEPSEEK3, 2, 0,
	  "<｜begin▁of▁sentence｜>Answer briefly.<｜User｜>Hi<｜Assistant｜>Hello! How can I help?<｜end▁of▁sentence｜><｜User｜>Name a prime." },
	{ "deepseek-r1-distill.jinja", CHAT_DEEPSEEK3, 3, 1,
	  "<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜>Hello!<｜end▁of▁sentence｜><｜User｜>Bye<｜Assistant｜>" },
	{ "deepseek-r1-distill.jinja", CHAT_DEEPSEEK3, 3, 0,
	  "<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜>Hello!<｜end▁of▁sentence｜><｜User｜>Bye" },
	{ "deepseek-r1-distill.jinja", CHAT_DEEPSEEK3, 4, 1,
	  "<｜begin▁of▁sentence｜>  Be terse. \n"
	  "<｜User｜> \t Tell me a joke.\n"
	  "\n"
	  "<｜Assistant｜>  Sure:  a joke.  <｜end▁of▁sentence｜><｜User｜>\343\200\200again\302\240\342\200\203<｜Assistant｜>" },
	{ "deepseek-r1-distill.jinja", CHAT_DEEPSEEK3, 4, 0,
	  "<｜begin▁of▁sentence｜>  Be terse. \n"
	  "<｜User｜> \t Tell me a joke.\n"
	  "\n"
	  "<｜Assistant｜>  Sure:  a joke.  <｜end▁of▁sentence｜><｜User｜>\343\200\200again\302\240\342\200\203" },
	{ "deepseek-r1-distill.jinja", CHAT_DEEPSEEK3, 5, 1,
	  "<｜begin▁of▁sentence｜><｜User｜>\n"
	  "\n"
	  "line one\n"
	  "line two\r\n"
	  "<｜Assistant｜>" },
	{ "deepseek-r1-distill.jinja", CHAT_DEEPSEEK3, 5, 0,
	  "<｜begin▁of▁sentence｜><｜User｜>\n"
	  "\n"
	  "line one\n"
	  "line two\r\n" },
	{ "deepseek-r1-distill.jinja", CHAT_DEEPSEEK3, 6, 1,
	  "<｜begin▁of▁sentence｜><｜User｜>2+2?<｜Assistant｜>\n"
	  "\n"
	  "4<｜end▁of▁sentence｜><｜User｜>3+3?<｜Assistant｜>" },
	{ "deepseek-r1-distill.jinja", CHAT_DEEPSEEK3, 6, 0,
	  "<｜begin▁of▁sentence｜><｜User｜>2+2?<｜Assistant｜>\n"
	  "\n"
	  "4<｜end▁of▁sentence｜><｜User｜>3+3?" },
	{ "deepseek-r1-distill.jinja", CHAT_DEEPSEEK3, 7, 1,
	  "<｜begin▁of▁sentence｜>Be exact.<｜User｜>a<｜Assistant｜>z<｜end▁of▁sentence｜><｜User｜>b<｜Assistant｜>" },
	{ "deepseek-r1-distill.jinja", CHAT_DEEPSEEK3, 7, 0,
	  "<｜begin▁of▁sentence｜>Be exact.<｜User｜>a<｜Assistant｜>z<｜end▁of▁sentence｜><｜User｜>b" },
	{ "deepseek-r1-distill.jinja", CHAT_DEEPSEEK3, 8, 1,
	  "<｜begin▁of▁sentence｜>late system<｜User｜>q1<｜User｜>q2<｜Assistant｜>" },
	{ "deepseek-r1-distill.jinja", CHAT_DEEPSEEK3, 8, 0,
	  "<｜begin▁of▁sentence｜>late system<｜User｜>q1<｜User｜>q2" },
	{ "llama2-chat.jinja", CHAT_LLAMA2, 0, 1,
	  "<s>[INST] <<SYS>>\n"
	  "You are a helpful assistant.\n"
	  "<</SYS>>\n"
	  "\n"
	  "What is the capital of France? [/INST]" },
	{ "llama2-chat.jinja", CHAT_LLAMA2, 0, 0,
	  "<s>[INST] <<SYS>>\n"
	  "You are a helpful assistant.\n"
	  "<</SYS>>\n"
	  "\n"
	  "What is the capital of France? [/INST]" },
	{ "llama2-chat.jinja", CHAT_LLAMA2, 1, 1,
	  "<s>[INST] Hello [/INST]" },
	{ "llama2-chat.jinja", CHAT_LLAMA2, 1, 0,
	  "<s>[INST] Hello [/INST]" },
	{ "llama2-chat.jinja", CHAT_LLAMA2, 2, 1,
	  "<s>[INST] <<SYS>>\n"
	  "Answer briefly.\n"
	  "<</SYS>>\n"
	  "\n"
	  "Hi [/INST] Hello! How can I help? </s><s>[INST] Name a prime. [/INST]" },
	{ "llama2-chat.jinja", CHAT_LLAMA2, 2, 0,
	  "<s>[INST] <<SYS>>\n"
	  "Answer briefly.\n"
	  "<</SYS>>\n"
	  "\n"
	  "Hi [/INST] Hello! How can I help? </s><s>[INST] Name a prime. [/INST]" },
	{ "llama2-chat.jinja", CHAT_LLAMA2, 3, 1,
	  "<s>[INST] Hi [/INST] Hello! </s><s>[INST] Bye [/INST]" },
	{ "llama2-chat.jinja", CHAT_LLAMA2, 3, 0,
	  "<s>[INST] Hi [/INST] Hello! </s><s>[INST] Bye [/INST]" },
	{ "llama2-chat.jinja", CHAT_LLAMA2, 4, 1,
	  "<s>[INST] <<SYS>>\n"
	  "  Be terse. \n"
	  "\n"
	  "<</SYS>>\n"
	  "\n"
	  " \t Tell me a joke. [/INST] Sure:  a joke. </s><s>[INST] again [/INST]" },
	{ "llama2-chat.jinja", CHAT_LLAMA2, 4, 0,
	  "<s>[INST] <<SYS>>\n"
	  "  Be terse. \n"
	  "\n"
	  "<</SYS>>\n"
	  "\n"
	  " \t Tell me a joke. [/INST] Sure:  a joke. </s><s>[INST] again [/INST]" },
	{ "llama2-chat.jinja", CHAT_LLAMA2, 5, 1,
	  "<s>[INST] line one\n"
	  "line two [/INST]" },
	{ "llama2-chat.jinja", CHAT_LLAMA2, 5, 0,
	  "<s>[INST] line one\n"
	  "line two [/INST]" },
	{ "llama2-chat.jinja", CHAT_LLAMA2, 6, 1,
	  "<s>[INST] 2+2? [/INST] <think>\n"
	  "Easy.</think>\n"
	  "\n"
	  "4 </s><s>[INST] 3+3? [/INST]" },
	{ "llama2-chat.jinja", CHAT_LLAMA2, 6, 0,
	  "<s>[INST] 2+2? [/INST] <think>\n"
	  "Easy.</think>\n"
	  "\n"
	  "4 </s><s>[INST] 3+3? [/INST]" },
	{ "llama2-chat.jinja", CHAT_LLAMA2, 7, 1,
	  "<s>[INST] <<SYS>>\n"
	  "Be exact.\n"
	  "<</SYS>>\n"
	  "\n"
	  "a [/INST] <think>x</think>y</think>z </s><s>[INST] b [/INST]" },
	{ "llama2-chat.jinja", CHAT_LLAMA2, 7, 0,
	  "<s>[INST] <<SYS>>\n"
	  "Be exact.\n"
	  "<</SYS>>\n"
	  "\n"
	  "a [/INST] <think>x</think>y</think>z </s><s>[INST] b [/INST]" },
	{ "llama2-chat.jinja", CHAT_LLAMA2, 8, 1,
	  "<s>[INST] q1 [/INST]<s>[INST] q2 [/INST]" },
	{ "llama2-chat.jinja", CHAT_LLAMA2, 8, 0,
	  "<s>[INST] q1 [/INST]<s>[INST] q2 [/INST]" },
	{ "gemma2-it.jinja", CHAT_GEMMA, 1, 1,
	  "<bos><start_of_turn>user\n"
	  "Hello<end_of_turn>\n"
	  "<start_of_turn>model\n" },
	{ "gemma2-it.jinja", CHAT_GEMMA, 1, 0,
	  "<bos><start_of_turn>user\n"
	  "Hello<end_of_turn>\n" },
	{ "gemma2-it.jinja", CHAT_GEMMA, 3, 1,
	  "<bos><start_of_turn>user\n"
	  "Hi<end_of_turn>\n"
	  "<start_of_turn>model\n"
	  "Hello!<end_of_turn>\n"
	  "<start_of_turn>user\n"
	  "Bye<end_of_turn>\n"
	  "<start_of_turn>model\n" },
	{ "gemma2-it.jinja", CHAT_GEMMA, 3, 0,
	  "<bos><start_of_turn>user\n"
	  "Hi<end_of_turn>\n"
	  "<start_of_turn>model\n"
	  "Hello!<end_of_turn>\n"
	  "<start_of_turn>user\n"
	  "Bye<end_of_turn>\n" },
	{ "gemma2-it.jinja", CHAT_GEMMA, 5, 1,
	  "<bos><start_of_turn>user\n"
	  "line one\n"
	  "line two<end_of_turn>\n"
	  "<start_of_turn>model\n" },
	{ "gemma2-it.jinja", CHAT_GEMMA, 5, 0,
	  "<bos><start_of_turn>user\n"
	  "line one\n"
	  "line two<end_of_turn>\n" },
	{ "gemma2-it.jinja", CHAT_GEMMA, 6, 1,
	  "<bos><start_of_turn>user\n"
	  "2+2?<end_of_turn>\n"
	  "<start_of_turn>model\n"
	  "<think>\n"
	  "Easy.</think>\n"
	  "\n"
	  "4<end_of_turn>\n"
	  "<start_of_turn>user\n"
	  "3+3?<end_of_turn>\n"
	  "<start_of_turn>model\n" },
	{ "gemma2-it.jinja", CHAT_GEMMA, 6, 0,
	  "<bos><start_of_turn>user\n"
	  "2+2?<end_of_turn>\n"
	  "<start_of_turn>model\n"
	  "<think>\n"
	  "Easy.</think>\n"
	  "\n"
	  "4<end_of_turn>\n"
	  "<start_of_turn>user\n"
	  "3+3?<end_of_turn>\n" },
	{ "gemma2-it.jinja", CHAT_GEMMA, 8, 1,
	  "<bos><start_of_turn>user\n"
	  "q1<end_of_turn>\n"
	  "<start_of_turn>system\n"
	  "late system<end_of_turn>\n"
	  "<start_of_turn>user\n"
	  "q2<end_of_turn>\n"
	  "<start_of_turn>model\n" },
	{ "gemma2-it.jinja", CHAT_GEMMA, 8, 0,
	  "<bos><start_of_turn>user\n"
	  "q1<end_of_turn>\n"
	  "<start_of_turn>system\n"
	  "late system<end_of_turn>\n"
	  "<start_of_turn>user\n"
	  "q2<end_of_turn>\n" },
	{ "gemma3-it.jinja", CHAT_GEMMA, 0, 1,
	  "<bos><start_of_turn>user\n"
	  "You are a helpful assistant.\n"
	  "\n"
	  "What is the capital of France?<end_of_turn>\n"
	  "<start_of_turn>model\n" },
	{ "gemma3-it.jinja", CHAT_GEMMA, 0, 0,
	  "<bos><start_of_turn>user\n"
	  "You are a helpful assistant.\n"
	  "\n"
	  "What is the capital of France?<end_of_turn>\n" },
	{ "gemma3-it.jinja", CHAT_GEMMA, 1, 1,
	  "<bos><start_of_turn>user\n"
	  "Hello<end_of_turn>\n"
	  "<start_of_turn>model\n" },
	{ "gemma3-it.jinja", CHAT_GEMMA, 1, 0,
	  "<bos><start_of_turn>user\n"
	  "Hello<end_of_turn>\n" },
	{ "gemma3-it.jinja", CHAT_GEMMA, 2, 1,
	  "<bos><start_of_turn>user\n"
	  "Answer briefly.\n"
	  "\n"
	  "Hi<end_of_turn>\n"
	  "<start_of_turn>model\n"
	  "Hello! How can I help?<end_of_turn>\n"
	  "<start_of_turn>user\n"
	  "Name a prime.<end_of_turn>\n"
	  "<start_of_turn>model\n" },
	{ "gemma3-it.jinja", CHAT_GEMMA, 2, 0,
	  "<bos><start_of_turn>user\n"
	  "Answer briefly.\n"
	  "\n"
	  "Hi<end_of_turn>\n"
	  "<start_of_turn>model\n"
	  "Hello! How can I help?<end_of_turn>\n"
	  "<start_of_turn>user\n"
	  "Name a prime.<end_of_turn>\n" },
	{ "gemma3-it.jinja", CHAT_GEMMA, 3, 1,
	  "<bos><start_of_turn>user\n"
	  "Hi<end_of_turn>\n"
	  "<start_of_turn>model\n"
	  "Hello!<end_of_turn>\n"
	  "<start_of_turn>user\n"
	  "Bye<end_of_turn>\n"
	  "<start_of_turn>model\n" },
	{ "gemma3-it.jinja", CHAT_GEMMA, 3, 0,
	  "<bos><start_of_turn>user\n"
	  "Hi<end_of_turn>\n"
	  "<start_of_turn>model\n"
	  "Hello!<end_of_turn>\n"
	  "<start_of_turn>user\n"
	  "Bye<end_of_turn>\n" },
	{ "gemma3-it.jinja", CHAT_GEMMA, 4, 1,
	  "<bos><start_of_turn>user\n"
	  "  Be terse. \n"
	  "\n"
	  "\n"
	  "Tell me a joke.<end_of_turn>\n"
	  "<start_of_turn>model\n"
	  "Sure:  a joke.<end_of_turn>\n"
	  "<start_of_turn>user\n"
	  "again<end_of_turn>\n"
	  "<start_of_turn>model\n" },
	{ "gemma3-it.jinja", CHAT_GEMMA, 4, 0,
	  "<bos><start_of_turn>user\n"
	  "  Be terse. \n"
	  "\n"
	  "\n"
	  "Tell me a joke.<end_of_turn>\n"
	  "<start_of_turn>model\n"
	  "Sure:  a joke.<end_of_turn>\n"
	  "<start_of_turn>user\n"
	  "again<end_of_turn>\n" },
	{ "gemma3-it.jinja", CHAT_GEMMA, 5, 1,
	  "<bos><start_of_turn>user\n"
	  "line one\n"
	  "line two<end_of_turn>\n"
	  "<start_of_turn>model\n" },
	{ "gemma3-it.jinja", CHAT_GEMMA, 5, 0,
	  "<bos><start_of_turn>user\n"
	  "line one\n"
	  "line two<end_of_turn>\n" },
	{ "gemma3-it.jinja", CHAT_GEMMA, 6, 1,
	  "<bos><start_of_turn>user\n"
	  "2+2?<end_of_turn>\n"
	  "<start_of_turn>model\n"
	  "<think>\n"
	  "Easy.</think>\n"
	  "\n"
	  "4<end_of_turn>\n"
	  "<start_of_turn>user\n"
	  "3+3?<end_of_turn>\n"
	  "<start_of_turn>model\n" },
	{ "gemma3-it.jinja", CHAT_GEMMA, 6, 0,
	  "<bos><start_of_turn>user\n"
	  "2+2?<end_of_turn>\n"
	  "<start_of_turn>model\n"
	  "<think>\n"
	  "Easy.</think>\n"
	  "\n"
	  "4<end_of_turn>\n"
	  "<start_of_turn>user\n"
	  "3+3?<end_of_turn>\n" },
	{ "gemma3-it.jinja", CHAT_GEMMA, 7, 1,
	  "<bos><start_of_turn>user\n"
	  "Be exact.\n"
	  "\n"
	  "a<end_of_turn>\n"
	  "<start_of_turn>model\n"
	  "<think>x</think>y</think>z<end_of_turn>\n"
	  "<start_of_turn>user\n"
	  "b<end_of_turn>\n"
	  "<start_of_turn>model\n" },
	{ "gemma3-it.jinja", CHAT_GEMMA, 7, 0,
	  "<bos><start_of_turn>user\n"
	  "Be exact.\n"
	  "\n"
	  "a<end_of_turn>\n"
	  "<start_of_turn>model\n"
	  "<think>x</think>y</think>z<end_of_turn>\n"
	  "<start_of_turn>user\n"
	  "b<end_of_turn>\n" },
	{ "gemma3-it.jinja", CHAT_GEMMA, 8, 1,
	  "<bos><start_of_turn>user\n"
	  "q1<end_of_turn>\n"
	  "<start_of_turn>system\n"
	  "late system<end_of_turn>\n"
	  "<start_of_turn>user\n"
	  "q2<end_of_turn>\n"
	  "<start_of_turn>model\n" },
	{ "gemma3-it.jinja", CHAT_GEMMA, 8, 0,
	  "<bos><start_of_turn>user\n"
	  "q1<end_of_turn>\n"
	  "<start_of_turn>system\n"
	  "late system<end_of_turn>\n"
	  "<start_of_turn>user\n"
	  "q2<end_of_turn>\n" },
};
/* ---- END GOLDEN ---- */

static char *data_path(const char *name)
{
	static char buf[4096];
	const char *src = getenv("SEEKFS_SRC");
	snprintf(buf, sizeof buf, "%s/tests/data/chat/%s", src ? src : ".", name);
	return buf;
}

static void test_goldens(void)
{
	char buf[8192];

	for (size_t i = 0; i < sizeof goldens / sizeof goldens[0]; i++) {
		const struct golden *g = &goldens[i];
		const struct conv *c = &convs[g->conv];
		buf[0] = '\0';
		int n = chat_apply(g->t, c->msgs, c->n, g->add_assistant, buf,
				   sizeof buf);
		T_CHECK(n == (int)strlen(g->want) && !strcmp(buf, g->want),
			"%s, conversation %s, add_assistant %d:\n"
			"got  (%d) [%s]\nwant (%zu) [%s]",
			g->tmpl_file, c->name, g->add_assistant, n, buf,
			strlen(g->want), g->want);
	}
	/* Every family has goldens. */
	for (int t = CHAT_CHATML; t <= CHAT_GEMMA; t++) {
		int seen = 0;
		for (size_t i = 0; i < sizeof goldens / sizeof goldens[0]; i++)
			seen += goldens[i].t == (enum chat_tmpl)t;
		T_CHECK(seen >= 4, "%s has %d goldens", chat_name(t), seen);
	}
}

static void test_detect(void)
{
	static const struct {
		const char *file;
		enum chat_tmpl want;
	} cases[] = {
		{ "openhermes-2.5-chatml.jinja", CHAT_CHATML },
		{ "qwen2.5-instruct.jinja", CHAT_CHATML },
		{ "smollm2-instruct.jinja", CHAT_CHATML },
		{ "llama3-instruct.jinja", CHAT_LLAMA3 },
		{ "deepseek-r1-distill.jinja", CHAT_DEEPSEEK3 },
		{ "llama2-chat.jinja", CHAT_LLAMA2 },
		{ "gemma2-it.jinja", CHAT_GEMMA },
		{ "gemma3-it.jinja", CHAT_GEMMA },
		{ "phi3-small.jinja", CHAT_NONE },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *path = data_path(cases[i].file);
		char *text = t_slurp(path, NULL);
		T_REQUIRE(text, "cannot read %s", path);
		enum chat_tmpl got = chat_detect(text);
		T_CHECK(got == cases[i].want, "%s: detected %s, want %s",
			cases[i].file, chat_name(got), chat_name(cases[i].want));
		free(text);
	}
	T_CHECK(chat_detect(NULL) == CHAT_NONE, "NULL");
	T_CHECK(chat_detect("") == CHAT_NONE, "empty");
	T_CHECK(chat_detect("{{ messages[0]['content'] }}") == CHAT_NONE,
		"template without markers");
	/* ChatML look-alikes that llama.cpp does not treat as ChatML. */
	T_CHECK(chat_detect("<|im_start|>user<|im_sep|>") == CHAT_NONE, "phi4");
	T_CHECK(chat_detect("<|im_start|>User:<end_of_utterance>") == CHAT_NONE,
		"smolvlm");
	T_CHECK(chat_detect("llama3") == CHAT_LLAMA3, "a family name");
}

static void test_names(void)
{
	static const char *const names[] = { "none", "chatml", "llama3",
					     "deepseek3", "llama2", "gemma" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		enum chat_tmpl t = chat_from_name(names[i]);
		T_CHECK(!strcmp(chat_name(t), names[i]), "%s -> %d -> %s",
			names[i], (int)t, chat_name(t));
	}
	T_CHECK(chat_from_name("jinja") == CHAT_NONE, "unknown name");
	T_CHECK(chat_from_name(NULL) == CHAT_NONE, "NULL name");
}

static void test_buffer(void)
{
	const struct chat_msg m[] = { { "system", "sys" }, { "user", "hello" } };
	const char *want = "<|im_start|>system\nsys<|im_end|>\n"
			   "<|im_start|>user\nhello<|im_end|>\n"
			   "<|im_start|>assistant\n";
	int full = (int)strlen(want);
	char buf[256];

	/* Size query, then every short buffer: the needed length each time,
	 * a NUL-terminated prefix, nothing written past n. */
	T_CHECK(chat_apply(CHAT_CHATML, m, 2, 1, NULL, 0) == full, "size query");
	for (int n = 1; n <= full + 1; n++) {
		memset(buf, 'X', sizeof buf);
		int r = chat_apply(CHAT_CHATML, m, 2, 1, buf, (size_t)n);
		T_CHECK(r == full, "n=%d: returned %d, want %d", n, r, full);
		T_CHECK(strlen(buf) == (size_t)(n - 1 < full ? n - 1 : full) &&
				!strncmp(buf, want, strlen(buf)),
			"n=%d: prefix [%s]", n, buf);
		T_CHECK(buf[n] == 'X', "n=%d: wrote past the buffer", n);
	}
	/* The same for a template whose stripping spans several pieces. */
	const struct chat_msg l2[] = { { "system", " s " }, { "user", " u " } };
	int need = chat_apply(CHAT_LLAMA2, l2, 2, 1, NULL, 0);
	T_CHECK(need == (int)strlen("<s>[INST] <<SYS>>\n s \n<</SYS>>\n\n u [/INST]"),
		"llama2 size %d", need);
	for (int n = 0; n <= need + 1; n++) {
		memset(buf, 'X', sizeof buf);
		int r = chat_apply(CHAT_LLAMA2, l2, 2, 1, buf, (size_t)n);
		T_CHECK(r == need && buf[n] == 'X', "llama2 n=%d: %d", n, r);
	}
}

static void test_errors(void)
{
	char buf[256];
	const struct chat_msg bad_role[] = { { "tool", "x" } };
	const struct chat_msg null_role[] = { { NULL, "x" } };
	const struct chat_msg two_users[] = { { "user", "a" }, { "user", "b" } };
	const struct chat_msg starts_ass[] = { { "assistant", "a" } };
	const struct chat_msg null_content[] = { { "user", NULL } };

	for (int t = CHAT_NONE; t <= CHAT_GEMMA; t++) {
		T_CHECK(chat_apply(t, bad_role, 1, 1, buf, sizeof buf) == -EINVAL,
			"%s: unknown role", chat_name(t));
		T_CHECK(chat_apply(t, null_role, 1, 1, buf, sizeof buf) == -EINVAL,
			"%s: NULL role", chat_name(t));
		T_CHECK(chat_apply(t, null_content, 1, 1, buf, sizeof buf) >= 0,
			"%s: NULL content is empty", chat_name(t));
	}
	T_CHECK(chat_apply((enum chat_tmpl)99, two_users, 2, 1, buf, sizeof buf) ==
			-EINVAL,
		"unknown family");
	/* Llama 2 and Gemma refuse turns that do not alternate. */
	T_CHECK(chat_apply(CHAT_LLAMA2, two_users, 2, 1, buf, sizeof buf) == -EINVAL,
		"llama2 user,user");
	T_CHECK(chat_apply(CHAT_GEMMA, two_users, 2, 1, buf, sizeof buf) == -EINVAL,
		"gemma user,user");
	T_CHECK(chat_apply(CHAT_GEMMA, starts_ass, 1, 1, buf, sizeof buf) == -EINVAL,
		"gemma starts with assistant");
	T_CHECK(chat_apply(CHAT_CHATML, two_users, 2, 1, buf, sizeof buf) > 0,
		"chatml does not care");

	const struct chat_msg plain[] = { { "system", "Context." },
					  { "user", "" },
					  { "user", "Question?" } };
	T_CHECK(chat_apply(CHAT_NONE, plain, 3, 1, buf, sizeof buf) > 0 &&
			!strcmp(buf, "Context.\n\nQuestion?"),
		"none: [%s]", buf);
	T_CHECK(chat_apply(CHAT_LLAMA3, NULL, 0, 1, buf, sizeof buf) > 0 &&
			!strcmp(buf, "<|start_header_id|>assistant<|end_header_id|>\n\n"),
		"llama3 with no messages: [%s]", buf);
}

/* The default system message of ChatML templates that have one, read from
 * the real template texts; templates without one give -ENOENT. */
static void test_default_system(void)
{
	static const struct {
		const char *file, *want;
	} cases[] = {
		{ "qwen2.5-instruct.jinja",
		  "You are Qwen, created by Alibaba Cloud. You are a helpful assistant." },
		{ "smollm2-instruct.jinja",
		  "You are a helpful AI assistant named SmolLM, trained by Hugging Face" },
		{ "openhermes-2.5-chatml.jinja", NULL },
		{ "llama3-instruct.jinja", NULL },
		{ "deepseek-r1-distill.jinja", NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *text = t_slurp(data_path(cases[i].file), NULL);
		T_REQUIRE(text, "cannot read %s", cases[i].file);
		char buf[512];
		int n = chat_default_system(text, buf, sizeof buf);
		if (cases[i].want)
			T_CHECK(n == (int)strlen(cases[i].want) && !strcmp(buf, cases[i].want),
				"%s: default system '%s' (%d), want '%s'", cases[i].file,
				n > 0 ? buf : "", n, cases[i].want);
		else
			T_CHECK(n == -ENOENT, "%s: found a default system message '%s'",
				cases[i].file, n > 0 ? buf : "");
		free(text);
	}
	T_CHECK(chat_default_system(NULL, NULL, 0) == -ENOENT, "NULL template");
}

int main(void)
{
	test_goldens();
	test_detect();
	test_names();
	test_buffer();
	test_errors();
	test_default_system();
	return t_done("test_chat");
}
