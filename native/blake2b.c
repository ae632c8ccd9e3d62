/* BLAKE2b after RFC 7693 section 3: 12 rounds of G over a 16-word state, 128-byte blocks, the
 * last (zero-padded) block flagged.  Only the first state word is returned: the duplicate check
 * keeps 8 digest bytes. */
#include "blake2b.h"

#include <string.h>

static const uint64_t IV[8] = {0x6A09E667F3BCC908ULL, 0xBB67AE8584CAA73BULL, 0x3C6EF372FE94F82BULL,
                               0xA54FF53A5F1D36F1ULL, 0x510E527FADE682D1ULL, 0x9B05688C2B3E6C1FULL,
                               0x1F83D9ABFB41BD6BULL, 0x5BE0CD19137E2179ULL};

static const uint8_t SIGMA[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4}, {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13}, {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11}, {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5}, {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

static inline uint64_t rotr(uint64_t x, int n) { return (x >> n) | (x << (64 - n)); }

static inline uint64_t load64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

#define G(a, b, c, d, x, y)                                                                                            \
    do {                                                                                                               \
        v[a] = v[a] + v[b] + (x);                                                                                      \
        v[d] = rotr(v[d] ^ v[a], 32);                                                                                  \
        v[c] = v[c] + v[d];                                                                                            \
        v[b] = rotr(v[b] ^ v[c], 24);                                                                                  \
        v[a] = v[a] + v[b] + (y);                                                                                      \
        v[d] = rotr(v[d] ^ v[a], 16);                                                                                  \
        v[c] = v[c] + v[d];                                                                                            \
        v[b] = rotr(v[b] ^ v[c], 63);                                                                                  \
    } while (0)

static void compress(uint64_t h[8], const unsigned char block[128], uint64_t counted, int last) {
    uint64_t v[16], m[16];
    for (int i = 0; i < 16; i++) m[i] = load64(block + 8 * i);
    for (int i = 0; i < 8; i++) v[i] = h[i], v[i + 8] = IV[i];
    v[12] ^= counted; /* the byte counter's high word stays zero: no record is 2^64 bytes */
    if (last) v[14] = ~v[14];
#pragma GCC unroll 12 /* every round unrolled: each message word is then picked at compile time */
    for (int r = 0; r < 12; r++) {
        const uint8_t *s = SIGMA[r];
        G(0, 4, 8, 12, m[s[0]], m[s[1]]);
        G(1, 5, 9, 13, m[s[2]], m[s[3]]);
        G(2, 6, 10, 14, m[s[4]], m[s[5]]);
        G(3, 7, 11, 15, m[s[6]], m[s[7]]);
        G(0, 5, 10, 15, m[s[8]], m[s[9]]);
        G(1, 6, 11, 12, m[s[10]], m[s[11]]);
        G(2, 7, 8, 13, m[s[12]], m[s[13]]);
        G(3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for (int i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

uint64_t imp_blake2b_word(const unsigned char *data, size_t len, int outlen) {
    uint64_t h[8];
    unsigned char last[128];
    memcpy(h, IV, sizeof h);
    h[0] ^= 0x01010000ULL ^ (uint64_t)outlen; /* parameter block: digest length, no key, fanout and depth 1 */
    size_t done = 0;
    while (len - done > 128) { /* every block but the last, which is flagged (even when full) */
        compress(h, data + done, done + 128, 0);
        done += 128;
    }
    memset(last, 0, sizeof last);
    if (len > done) memcpy(last, data + done, len - done);
    compress(h, last, len, 1);
    if (outlen >= 8) return h[0];
    return h[0] & ((1ULL << (8 * outlen)) - 1);
}
