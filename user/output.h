/* SPDX-License-Identifier: GPL-2.0 */
/* One printer for text and JSON, in the manner of iproute2's print_*():
 * each call names the JSON key and the text format, so the two outputs come
 * from the same line of code and cannot drift apart. */
#ifndef XDPFWD_OUTPUT_H
#define XDPFWD_OUTPUT_H

#include <stdbool.h>
#include <linux/types.h>

void out_init(bool json);
bool out_is_json(void);
/* Ends the document (JSON: its line); out_init starts the next one. */
void out_finish(void);

/* Containers. @key is NULL inside arrays and at the top level. */
void out_open_object(const char *key);
void out_close_object(void);
void out_open_array(const char *key);
void out_close_array(void);

/* Values: JSON gets key/value, text gets @fmt with the value. A NULL @fmt
 * prints nothing in text mode. */
void out_string(const char *key, const char *fmt, const char *value);
void out_u64(const char *key, const char *fmt, __u64 value);
/* JSON gets three decimals, or null when @value is not finite. */
void out_double(const char *key, const char *fmt, double value);
void out_bool(const char *key, const char *fmt, bool value);
void out_null(const char *key, const char *fmt, const char *text);

/* Text-only output (headings, line ends); ignored in JSON mode. */
void out_text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Report an error as text on stderr, and as {"error": ...} in JSON mode.
 * Returns @code, so callers can `return errorf(EXIT_USAGE, ...)`. */
int errorf(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* out_error_context - put "@context: " before every error's message (e.g.
 * "FILE:LINE", while the errors are about one line of a file); NULL stops
 * it. @context must last until then. */
void out_error_context(const char *context);
/* A warning for the user on stderr, in both modes. */
void warnf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* XDPFWD_OUTPUT_H */
