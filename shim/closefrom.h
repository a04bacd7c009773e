/* closefrom() for kernels (or seccomp policies) without close_range. */
#ifndef HR_CLOSEFROM_H
#define HR_CLOSEFROM_H

/* Closes every fd from lowfd up but the shim's own, forgetting what the
 * table knew about them. No malloc: apps call closefrom() in fork children. */
void hr_closefrom_fallback(int lowfd);

#endif
