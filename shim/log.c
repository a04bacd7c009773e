#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int hr_log_level = HR_LOG_INFO;

int hr_fmt_long(char *buf, long value)
{
	char digits[24];
	int n = 0, len = 0;
	unsigned long v = value < 0 ? 0UL - (unsigned long)value : (unsigned long)value;
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if (value < 0)
		buf[len++] = '-';
	while (n)
		buf[len++] = digits[--n];
	buf[len] = '\0';
	return len;
}

static int hr_log_prefix(char *buf)
{
	static const char head[] = "hotrestart[";
	memcpy(buf, head, sizeof head - 1);
	int len = (int)sizeof head - 1;
	len += hr_fmt_long(buf + len, (long)getpid());
	buf[len++] = ']';
	buf[len++] = ':';
	buf[len++] = ' ';
	return len;
}

static void hr_log_write(const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(2, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

void hr_log(int level, const char *fmt, ...)
{
	if (level > hr_log_level)
		return;
	int saved = errno;
	char buf[1024];
	int len = hr_log_prefix(buf);
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf + len, sizeof buf - (size_t)len - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	len += n;
	if (len > (int)sizeof buf - 2)
		len = (int)sizeof buf - 2;
	buf[len++] = '\n';
	hr_log_write(buf, (size_t)len);
	errno = saved;
}
