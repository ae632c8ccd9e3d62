/* dmlc RecordIO's framing words, shared by module.c's frame() and batch.c's pack_batch (the rules:
 * imgprep/formats/recordio.py, the pure-Python reference both match byte for byte). */
#ifndef IMGPREP_NATIVE_RECORDIO_H
#define IMGPREP_NATIVE_RECORDIO_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RIO_MAGIC 0xCED7230Au
#define RIO_MAX ((1u << 29) - 1)

static inline void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* Aligned words equal to the magic, counted in a branch-free loop the compiler vectorises:
 * almost every payload has none, and then framing is one header and one memcpy. */
static inline size_t count_aligned_magic(const unsigned char *d, size_t n) {
    size_t count = 0;
    for (size_t i = 0; i + 4 <= n; i += 4) {
        uint32_t w;
        memcpy(&w, d + i, 4);
        count += w == RIO_MAGIC;
    }
    return count;
}

#endif
