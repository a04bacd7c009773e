/* Load-time set-up of the shim. */
#ifndef HR_SHIM_H
#define HR_SHIM_H

#pragma GCC visibility push(hidden)

/* 1 once the constructor set everything up with a valid configuration; 0
 * before, or for good after a configuration error (the hooks then only
 * forward to libc, as if the shim were absent). */
extern int hr_active;

#pragma GCC visibility pop

#endif
