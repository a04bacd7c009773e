#include "addrmatch.h"

#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/un.h>

static int hr_is_wildcard(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return 0;
}

int hr_addr_match(const struct sockaddr *want, socklen_t wantlen, const struct sockaddr *have,
		  socklen_t havelen)
{
	if (want->sa_family != have->sa_family)
		return 0;
	if (want->sa_family == AF_UNIX) {
		const struct sockaddr_un *w = (const void *)want, *h = (const void *)have;
		size_t off = offsetof(struct sockaddr_un, sun_path);
		if (wantlen <= off || havelen <= off)
			return 0;
		size_t wl = wantlen - off, hl = havelen - off;
		if (w->sun_path[0]) { /* path: compare as C strings */
			wl = strnlen(w->sun_path, wl);
			hl = strnlen(h->sun_path, hl);
		}
		return wl == hl && memcmp(w->sun_path, h->sun_path, wl) == 0 ? 2 : 0;
	}
	in_port_t wport, hport;
	int same_addr;
	if (want->sa_family == AF_INET) {
		const struct sockaddr_in *w = (const void *)want, *h = (const void *)have;
		if (wantlen < sizeof *w || havelen < sizeof *h)
			return 0;
		wport = w->sin_port;
		hport = h->sin_port;
		same_addr = w->sin_addr.s_addr == h->sin_addr.s_addr;
	} else if (want->sa_family == AF_INET6) {
		const struct sockaddr_in6 *w = (const void *)want, *h = (const void *)have;
		if (wantlen < sizeof *w || havelen < sizeof *h)
			return 0;
		wport = w->sin6_port;
		hport = h->sin6_port;
		same_addr = memcmp(&w->sin6_addr, &h->sin6_addr, sizeof w->sin6_addr) == 0;
	} else {
		return 0;
	}
	/* Port 0 asks for a fresh ephemeral socket (an internal listener, a
	 * client choosing its source address), never for a public listener. */
	if (wport == 0 || wport != hport)
		return 0;
	if (same_addr)
		return 2;
	/* An app binding the wildcard may take a specific listener, as when
	 * systemd's .socket names 127.0.0.1 and the app binds 0.0.0.0. The
	 * reverse would widen the interfaces the new configuration names: a
	 * specific bind binds for real. */
	return hr_is_wildcard(want) ? 1 : 0;
}
