/* aq_xxh: xxHash as every module includes it, with XXH3 picked for the CPU at run time.
 *
 * Debian's libxxhash is built for baseline x86-64 (SSE2), so its plain XXH3 entry points hash at
 * about 20 GB/s here; the library also exports *_dispatch variants that choose AVX2 or AVX-512 on
 * first use (86 GB/s on a 4 MiB buffer on the same machine, and no slower on short keys).
 * xxh_x86dispatch.h maps the XXH3 names onto them. The values are the same on every CPU, so
 * digests and checksums written by one build verify on any other. */
#ifndef AQ_XXH_H
#define AQ_XXH_H

#include <xxhash.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xxh_x86dispatch.h>
#endif

#endif
