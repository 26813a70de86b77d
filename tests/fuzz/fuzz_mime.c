/* Fuzz target: the MIME reader (connectors/imap/mime.h). The input is a
 * raw message for mail_parse; it is also fed, NUL-terminated, to the header
 * decoder and encoder, and its first line is used as a charset label for
 * mail_to_utf8. Every output must be valid UTF-8, and encoding then
 * decoding a valid UTF-8 value must give it back. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/imap/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const char *s)
{
	if (s != NULL && inbox_utf8_invalid_at(s, strlen(s)) >= 0)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mail_msg m;
	struct inbox_err err;
	char *str, *dec, *enc, *back, *label;
	const char *note;
	size_t nl;

	if (mail_parse((const char *)data, size, &m, &err) == 0) {
		check(m.from_name);
		check(m.from_addr);
		check(m.subject);
		check(m.to);
		check(m.text);
		check(m.text_new);
		check(m.html);
		check(m.charset_note);
		check(m.message_id);
		if (strncmp(m.text, m.text_new, strlen(m.text_new)) != 0)
			__builtin_trap();
		for (size_t i = 0; i < m.nattachments; i++) {
			check(m.attachments[i].name);
			if (m.attachments[i].size > size)
				__builtin_trap();     /* decoding never grows */
		}
	} else if (err.msg[0] == '\0') {
		__builtin_trap();             /* errors say why */
	}
	mail_msg_finish(&m);

	if (size > 64 * 1024)
		return 0;
	str = malloc(size + 1);
	if (str == NULL)
		return 0;
	memcpy(str, data, size);
	str[size] = '\0';
	dec = mail_decode_header(str);
	check(dec);
	if (strlen(dec) < 4096) {
		enc = mail_encode_header(dec);
		back = mail_decode_header(enc);
		if (strcmp(back, dec) != 0)
			__builtin_trap();
		free(enc);
		free(back);
	}
	free(dec);

	nl = strcspn(str, "\n");
	label = strndup(str, nl < 40 ? nl : 40);
	if (label != NULL) {
		char *u = mail_to_utf8(label, (const char *)data, size, &note);

		check(u);
		free(u);
		free(label);
	}
	free(str);
	return 0;
}
