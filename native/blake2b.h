/* BLAKE2b (RFC 7693), unkeyed, for the duplicate fingerprint's content digest: the same value as
 * Python's hashlib.blake2b(data, digest_size=outlen), computed without the GIL inside a batch. */
#ifndef IMGPREP_NATIVE_BLAKE2B_H
#define IMGPREP_NATIVE_BLAKE2B_H

#include <stddef.h>
#include <stdint.h>

/* The first min(outlen, 8) digest bytes of `data`, little-endian, as one word (outlen 1..64):
 * what int.from_bytes(blake2b(data, digest_size=8).digest(), "little") gives for outlen 8. */
uint64_t imp_blake2b_word(const unsigned char *data, size_t len, int outlen);

#endif
