/* systemd's sd_notify protocol, spoken for an app that never did. */
#ifndef HR_NOTIFY_H
#define HR_NOTIFY_H

/* Reads NOTIFY_SOCKET once, at load. */
void hr_notify_init(void);
/* Sends one datagram of newline-separated assignments; no-op without
 * NOTIFY_SOCKET. printf-style. */
void hr_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
