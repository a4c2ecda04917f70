/*
 * Chat templates: recognising a model's template family from the Jinja text
 * in its GGUF (tokenizer.chat_template) and rendering a conversation the way
 * that Jinja template would, without a Jinja interpreter.
 *
 * Each renderer reproduces, byte for byte, the output of the real template
 * named beside it, for conversations of system / user / assistant messages
 * (tests/test_chat.c holds goldens rendered from those templates with
 * jinja2). Where the real templates of a family disagree, the comment on the
 * renderer says which one is followed. Whitespace trimming follows Python's
 * str.strip() (which Jinja's trim filter and the templates' .strip() use):
 * the Unicode White_Space characters, not only ASCII.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "engine/engine.h"

enum role { ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT };

/* snprintf-style sink: counts every byte, stores what fits. */
struct out {
	char *buf;
	size_t cap; /* bytes of text that fit (n - 1), 0 when n == 0 */
	size_t len; /* full length so far */
};

static void put_n(struct out *o, const char *s, size_t k)
{
	if (o->len < o->cap) {
		size_t room = o->cap - o->len;
		memcpy(o->buf + o->len, s, k < room ? k : room);
	}
	o->len += k;
}

static void put(struct out *o, const char *s)
{
	put_n(o, s, strlen(s));
}

/* Length of the White_Space code point (as Python's str.isspace() sees it)
 * that starts at s, or 0. s has n bytes. */
static size_t ws_front(const unsigned char *s, size_t n)
{
	if (n == 0)
		return 0;
	unsigned c = s[0];
	if ((c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20))
		return 1;
	if (c == 0xc2 && n >= 2 && (s[1] == 0x85 || s[1] == 0xa0))
		return 2;
	if (n < 3)
		return 0;
	if (c == 0xe1 && s[1] == 0x9a && s[2] == 0x80) /* U+1680 */
		return 3;
	if (c == 0xe2 && s[1] == 0x80 && /* U+2000..200A, 2028, 2029, 202F */
	    ((s[2] >= 0x80 && s[2] <= 0x8a) || s[2] == 0xa8 || s[2] == 0xa9 ||
	     s[2] == 0xaf))
		return 3;
	if (c == 0xe2 && s[1] == 0x81 && s[2] == 0x9f) /* U+205F */
		return 3;
	if (c == 0xe3 && s[1] == 0x80 && s[2] == 0x80) /* U+3000 */
		return 3;
	return 0;
}

/* Length of the White_Space code point that ends at s + n, or 0. */
static size_t ws_back(const unsigned char *s, size_t n)
{
	for (size_t k = 1; k <= 3 && k <= n; k++)
		if (ws_front(s + n - k, k) == k)
			return k;
	return 0;
}

/* Emit the concatenation of np strings with leading and trailing
 * whitespace removed, as Python's (a + b + ...).strip() would. */
static void put_stripped(struct out *o, const char *const *parts, int np)
{
	size_t lens[4];
	int first = 0, last = np - 1;
	size_t off = 0, end = 0;

	for (int i = 0; i < np; i++)
		lens[i] = strlen(parts[i]);
	for (; first < np; first++, off = 0) {
		const unsigned char *p = (const unsigned char *)parts[first];
		size_t k;
		while ((k = ws_front(p + off, lens[first] - off)) > 0)
			off += k;
		if (off < lens[first])
			break;
	}
	if (first == np)
		return; /* all whitespace */
	for (; last >= first; last--) {
		const unsigned char *p = (const unsigned char *)parts[last];
		size_t lo = last == first ? off : 0, k;
		end = lens[last];
		while (end > lo && (k = ws_back(p + lo, end - lo)) > 0)
			end -= k;
		if (end > lo)
			break;
	}
	for (int i = first; i <= last; i++) {
		size_t a = i == first ? off : 0;
		size_t b = i == last ? end : lens[i];
		put_n(o, parts[i] + a, b - a);
	}
}

static void put_trimmed(struct out *o, const char *s)
{
	put_stripped(o, &s, 1);
}

static int parse_role(const char *r, enum role *out)
{
	if (!r)
		return -EINVAL;
	if (!strcmp(r, "system"))
		*out = ROLE_SYSTEM;
	else if (!strcmp(r, "user"))
		*out = ROLE_USER;
	else if (!strcmp(r, "assistant"))
		*out = ROLE_ASSISTANT;
	else
		return -EINVAL;
	return 0;
}

/* Role of a message already checked by chat_apply. */
static enum role role_of(const struct chat_msg *m)
{
	enum role r = ROLE_USER;
	parse_role(m->role, &r);
	return r;
}

static const char *content(const struct chat_msg *m)
{
	return m->content ? m->content : "";
}

/*
 * The templates of Llama 2 and Gemma refuse a conversation whose turns
 * (after a leading system message) do not go user, assistant, user, ...:
 * message i of the loop must be a user message exactly when i is even.
 */
static int alternates(const struct chat_msg *msgs, int from, int n)
{
	for (int i = from; i < n; i++)
		if ((role_of(&msgs[i]) == ROLE_USER) != ((i - from) % 2 == 0))
			return 0;
	return 1;
}

/* ChatML, as teknium/OpenHermes-2.5-Mistral-7B, Qwen2.5-Instruct and
 * SmolLM2-Instruct write it. Qwen2.5 and SmolLM2 insert their own default
 * system message when the conversation does not start with one; this
 * renderer does not (callers that want it pass it as the system message). */
static void r_chatml(struct out *o, const struct chat_msg *msgs, int n,
		     int add_ass)
{
	for (int i = 0; i < n; i++) {
		put(o, "<|im_start|>");
		put(o, msgs[i].role);
		put(o, "\n");
		put(o, content(&msgs[i]));
		put(o, "<|im_end|>\n");
	}
	if (add_ass)
		put(o, "<|im_start|>assistant\n");
}

/* Meta-Llama-3-8B-Instruct: BOS before the first message, every content
 * trimmed. The Llama 3.1 / 3.2 templates also write a "Cutting Knowledge
 * Date" preamble (with today's date in 3.2) into a system turn they always
 * emit; that preamble is not reproduced. */
static void r_llama3(struct out *o, const struct chat_msg *msgs, int n,
		     int add_ass)
{
	for (int i = 0; i < n; i++) {
		if (i == 0)
			put(o, "<|begin_of_text|>");
		put(o, "<|start_header_id|>");
		put(o, msgs[i].role);
		put(o, "<|end_header_id|>\n\n");
		put_trimmed(o, content(&msgs[i]));
		put(o, "<|eot_id|>");
	}
	if (add_ass)
		put(o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

/* The DeepSeek-R1-Distill (Qwen and Llama) template as released in January
 * 2025: BOS, then the last system message's content (no separator), user
 * turns as <｜User｜>text, assistant turns with any reasoning up to the last
 * </think> removed, and "<｜Assistant｜>" as the generation prompt. This is
 * also the generation prompt of llama.cpp's built-in deepseek3 template.
 * The later revision of these models' template opens the assistant turn
 * with "<｜Assistant｜><think>\n" instead; the model then writes "<think>\n"
 * itself. */
static void r_deepseek3(struct out *o, const struct chat_msg *msgs, int n,
			int add_ass)
{
	const char *sys = "";

	for (int i = 0; i < n; i++)
		if (role_of(&msgs[i]) == ROLE_SYSTEM)
			sys = content(&msgs[i]);
	put(o, "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>");
	put(o, sys);
	for (int i = 0; i < n; i++) {
		const char *c = content(&msgs[i]);
		if (role_of(&msgs[i]) == ROLE_USER) {
			put(o, "<\xef\xbd\x9cUser\xef\xbd\x9c>");
			put(o, c);
		} else if (role_of(&msgs[i]) == ROLE_ASSISTANT) {
			const char *p;
			while ((p = strstr(c, "</think>")) != NULL)
				c = p + strlen("</think>");
			put(o, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>");
			put(o, c);
			put(o, "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>");
		}
	}
	if (add_ass)
		put(o, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>");
}

/* Llama-2-7b-chat-hf: a leading system message goes inside the first turn
 * between <<SYS>> markers; each user turn is "<s>[INST] text [/INST]", each
 * assistant turn " text </s>", the stripping applied to the whole turn. The
 * template writes no generation prompt: the last [/INST] is one. */
static int r_llama2(struct out *o, const struct chat_msg *msgs, int n)
{
	int from = n > 0 && role_of(&msgs[0]) == ROLE_SYSTEM;

	if (!alternates(msgs, from, n))
		return -EINVAL;
	for (int i = from; i < n; i++) {
		const char *parts[4];
		int np = 0;
		if (i == 1 && from) {
			parts[np++] = "<<SYS>>\n";
			parts[np++] = content(&msgs[0]);
			parts[np++] = "\n<</SYS>>\n\n";
		}
		parts[np++] = content(&msgs[i]);
		if (role_of(&msgs[i]) == ROLE_SYSTEM) {
			/* A later system message passes the alternation test
			 * at an odd position and is written by no branch. */
			continue;
		} else if (role_of(&msgs[i]) == ROLE_USER) {
			put(o, "<s>[INST] ");
			put_stripped(o, parts, np);
			put(o, " [/INST]");
		} else {
			put(o, " ");
			put_stripped(o, parts, np);
			put(o, " </s>");
		}
	}
	return 0;
}

/* Gemma 3 (gemma-3-*-it): "<bos>", a leading system message prefixed to
 * the first turn followed by a blank line, the assistant called "model",
 * contents trimmed. For conversations without a system message this is also
 * exactly the Gemma and Gemma 2 template, which refuse system messages. */
static int r_gemma(struct out *o, const struct chat_msg *msgs, int n,
		   int add_ass)
{
	int from = n > 0 && role_of(&msgs[0]) == ROLE_SYSTEM;

	if (!alternates(msgs, from, n))
		return -EINVAL;
	put(o, "<bos>");
	for (int i = from; i < n; i++) {
		put(o, "<start_of_turn>");
		put(o, role_of(&msgs[i]) == ROLE_ASSISTANT ? "model" : msgs[i].role);
		put(o, "\n");
		if (i == from && from) {
			put(o, content(&msgs[0]));
			put(o, "\n\n");
		}
		put_trimmed(o, content(&msgs[i]));
		put(o, "<end_of_turn>\n");
	}
	if (add_ass)
		put(o, "<start_of_turn>model\n");
	return 0;
}

/* No template: the contents, separated by blank lines. */
static void r_none(struct out *o, const struct chat_msg *msgs, int n)
{
	int any = 0;

	for (int i = 0; i < n; i++) {
		const char *c = content(&msgs[i]);
		if (!*c)
			continue;
		if (any)
			put(o, "\n\n");
		put(o, c);
		any = 1;
	}
}

int chat_apply(enum chat_tmpl t, const struct chat_msg *msgs, int n_msgs,
	       int add_assistant, char *buf, size_t n)
{
	struct out o = { .buf = buf, .cap = n ? n - 1 : 0, .len = 0 };
	int rc = 0;

	if (n_msgs < 0 || (n_msgs > 0 && !msgs) || (n > 0 && !buf))
		return -EINVAL;
	for (int i = 0; i < n_msgs; i++) {
		enum role r;
		if (parse_role(msgs[i].role, &r) < 0)
			return -EINVAL;
	}

	switch (t) {
	case CHAT_CHATML:
		r_chatml(&o, msgs, n_msgs, add_assistant);
		break;
	case CHAT_LLAMA3:
		r_llama3(&o, msgs, n_msgs, add_assistant);
		break;
	case CHAT_DEEPSEEK3:
		r_deepseek3(&o, msgs, n_msgs, add_assistant);
		break;
	case CHAT_LLAMA2:
		rc = r_llama2(&o, msgs, n_msgs);
		break;
	case CHAT_GEMMA:
		rc = r_gemma(&o, msgs, n_msgs, add_assistant);
		break;
	case CHAT_NONE:
		r_none(&o, msgs, n_msgs);
		break;
	default:
		rc = -EINVAL;
	}
	if (rc == 0) {
		if (n > 0)
			buf[o.len < o.cap ? o.len : o.cap] = '\0';
		rc = o.len > INT_MAX ? -EOVERFLOW : (int)o.len;
	}
	return rc;
}

static const struct {
	enum chat_tmpl t;
	const char *name;
} names[] = {
	{ CHAT_NONE, "none" },       { CHAT_CHATML, "chatml" },
	{ CHAT_LLAMA3, "llama3" },   { CHAT_DEEPSEEK3, "deepseek3" },
	{ CHAT_LLAMA2, "llama2" },   { CHAT_GEMMA, "gemma" },
};

const char *chat_name(enum chat_tmpl t)
{
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].t == t)
			return names[i].name;
	return "none";
}

enum chat_tmpl chat_from_name(const char *name)
{
	if (!name)
		return CHAT_NONE;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (!strcmp(names[i].name, name))
			return names[i].t;
	return CHAT_NONE;
}

/* Marker tests in the order llama.cpp's llm_chat_detect_template applies
 * them, so that a template carrying several markers lands in the same
 * family. ChatML look-alikes that are not ChatML (Phi-4's <|im_sep|>,
 * SmolVLM's <end_of_utterance>) are left unknown. Every [INST] template is
 * taken as Llama 2: the Mistral variants differ from it only in spacing
 * around the turns. */
enum chat_tmpl chat_detect(const char *tmpl)
{
	if (!tmpl)
		return CHAT_NONE;
	for (size_t i = 1; i < sizeof names / sizeof names[0]; i++)
		if (!strcmp(names[i].name, tmpl))
			return names[i].t;
	if (strstr(tmpl, "<|im_start|>")) {
		if (strstr(tmpl, "<|im_sep|>") ||
		    strstr(tmpl, "<end_of_utterance>"))
			return CHAT_NONE;
		return CHAT_CHATML;
	}
	if (strstr(tmpl, "[INST]"))
		return CHAT_LLAMA2;
	if (strstr(tmpl, "<start_of_turn>"))
		return CHAT_GEMMA;
	if (strstr(tmpl, "<|start_header_id|>"))
		return CHAT_LLAMA3;
	if (strstr(tmpl, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>") ||
	    strstr(tmpl, "<\xef\xbd\x9cUser\xef\xbd\x9c>"))
		return CHAT_DEEPSEEK3;
	return CHAT_NONE;
}

int chat_default_system(const char *tmpl, char *buf, size_t n)
{
	/* ChatML templates that add a system turn when the conversation has
	 * none write it as one string literal: '<|im_start|>system\n...<|im_end|>'
	 * (the newline either literal or escaped). The branch that copies the
	 * user's system message continues the literal with ' + messages..., so
	 * only a literal with no quote or Jinja markup in its body counts. */
	static const char open[] = "<|im_start|>system";
	if (!tmpl)
		return -ENOENT;
	for (const char *p = strstr(tmpl, open); p; p = strstr(p + 1, open)) {
		const char *s = p + strlen(open);
		if (*s == '\n')
			s++;
		else if (s[0] == '\\' && s[1] == 'n')
			s += 2;
		else
			continue;
		const char *e = strstr(s, "<|im_end|>");
		if (!e || e == s)
			continue;
		size_t len = (size_t)(e - s);
		if (memchr(s, '\'', len) || memchr(s, '"', len) || memchr(s, '{', len))
			continue;
		size_t k = 0;
		for (const char *c = s; c < e; c++) {
			char ch = *c;
			if (c[0] == '\\' && c + 1 < e && c[1] == 'n')
				ch = '\n', c++;
			if (k + 1 < n)
				buf[k] = ch;
			k++;
		}
		if (n)
			buf[k < n ? k : n - 1] = 0;
		return (int)k;
	}
	return -ENOENT;
}
