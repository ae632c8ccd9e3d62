/* The duplicate fingerprint (phash.c), shared with its batch over packed records (phash_batch.c). */
#ifndef IMGPREP_NATIVE_PHASH_H
#define IMGPREP_NATIVE_PHASH_H

#include <stdint.h>

#define MAX_BOXES 15 /* the content box and its 14 crop windows (phash.WINDOW_COUNT) */
#define MAX_ALTS 8

typedef struct {
    int tol, peels, min_content;
    double clip, flat_std, ambiguous, cut[2], side_cut, chroma_flat;
} print_params;

/* phash.content_box: the box inside uniform bars (top, bottom, left, right). */
void imp_content_box(const uint8_t *img, int h, int w, int tol, int peels, int box[4]);

/* The fingerprint of one image: 0 when it is flat, else the number of boxes hashed (hashes, checks
 * and chroma words per box, canonical) and *alts the alternates of box 0; -1 when out of memory (or
 * past what exact 32-bit cell sums hold: a box over 8 G pixels). */
int imp_print_image(const uint8_t *src, const uint8_t *chroma, int h, int w, const float *dct, const float *cdct,
                    const print_params *p, uint64_t *hash, uint64_t *check, uint32_t *colour, uint64_t *alt_hash,
                    uint64_t *alt_check, uint32_t *alt_colour, int *alts, double *detail);

#endif
