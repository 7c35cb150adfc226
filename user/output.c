// SPDX-License-Identifier: GPL-2.0
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "output.h"

#define MAX_DEPTH 16

static bool json_mode;
static int depth;
static bool first[MAX_DEPTH];	/* no member printed yet at this level */
static bool errored;
static bool printed;	/* JSON output started: end it with a newline */
static const char *error_context;	/* what errors are about, e.g. "FILE:LINE" */

void out_init(bool json)
{
	json_mode = json;
	depth = 0;
	first[0] = true;
}

bool out_is_json(void)
{
	return json_mode;
}

static void json_escaped(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* json_key - separator and, inside an object, the key of the next member. */
static void json_key(const char *key)
{
	printed = true;
	if (!first[depth])
		putchar(',');
	first[depth] = false;
	if (key) {
		json_escaped(key);
		putchar(':');
	}
}

static void open_container(const char *key, char c)
{
	if (!json_mode)
		return;
	json_key(key);
	putchar(c);
	if (depth < MAX_DEPTH - 1)
		first[++depth] = true;
}

static void close_container(char c)
{
	if (!json_mode)
		return;
	putchar(c);
	if (depth > 0)
		depth--;
}

void out_open_object(const char *key) { open_container(key, '{'); }
void out_close_object(void) { close_container('}'); }
void out_open_array(const char *key) { open_container(key, '['); }
void out_close_array(void) { close_container(']'); }

void out_finish(void)
{
	if (printed && !errored)
		putchar('\n');
	printed = false;
	depth = 0;
	first[0] = true;
	fflush(stdout);
}

void out_string(const char *key, const char *fmt, const char *value)
{
	if (json_mode) {
		json_key(key);
		json_escaped(value);
	} else if (fmt) {
		printf(fmt, value);
	}
}

void out_u64(const char *key, const char *fmt, __u64 value)
{
	if (json_mode) {
		json_key(key);
		printf("%llu", (unsigned long long)value);
	} else if (fmt) {
		printf(fmt, (unsigned long long)value);
	}
}

void out_double(const char *key, const char *fmt, double value)
{
	if (json_mode && !isfinite(value)) {
		out_null(key, NULL, NULL);
	} else if (json_mode) {
		json_key(key);
		printf("%.3f", value);
	} else if (fmt) {
		printf(fmt, value);
	}
}

void out_bool(const char *key, const char *fmt, bool value)
{
	if (json_mode) {
		json_key(key);
		fputs(value ? "true" : "false", stdout);
	} else if (fmt) {
		printf(fmt, value ? "yes" : "no");
	}
}

void out_null(const char *key, const char *fmt, const char *text)
{
	if (json_mode) {
		json_key(key);
		fputs("null", stdout);
	} else if (fmt) {
		printf(fmt, text);
	}
}

void out_text(const char *fmt, ...)
{
	va_list ap;

	if (json_mode)
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

void out_error_context(const char *context)
{
	error_context = context;
}

int errorf(int code, const char *fmt, ...)
{
	char msg[512];
	int len = 0;
	va_list ap;

	if (error_context)
		len = snprintf(msg, sizeof(msg), "%.200s: ", error_context);
	va_start(ap, fmt);
	vsnprintf(msg + len, sizeof(msg) - len, fmt, ap);
	va_end(ap);
	fprintf(stderr, "xdpfwd: error: %s\n", msg);
	if (json_mode && !errored) {
		fputs("{\"error\":", stdout);
		json_escaped(msg);
		fputs("}\n", stdout);
		fflush(stdout);
	}
	errored = true;
	return code;
}

void warnf(const char *fmt, ...)
{
	va_list ap;

	fputs("xdpfwd: warning: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
