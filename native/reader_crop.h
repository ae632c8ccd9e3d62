/* imgprep reader transforms: decode only the crop of a JPEG, resample it, write uint8 RGB.
 *
 * Pure C on libjpeg's own API (libjpeg-turbo's libjpeg.so.62: jpeg_crop_scanline and
 * jpeg_skip_scanlines are not in TurboJPEG 2.1's API).  No Python, no global state: safe to
 * call from many threads at once.
 */
#ifndef IMGPREP_READER_CROP_H
#define IMGPREP_READER_CROP_H

#include <stddef.h>

enum {
    IMR_OK = 0,
    IMR_EBAD = 1,         /* corrupt data: libjpeg failed */
    IMR_EUNSUPPORTED = 2, /* CMYK/YCCK: left to the Pillow path */
    IMR_EWARN = 3,        /* libjpeg warned (e.g. truncated data): left to the Pillow path */
    IMR_ENOMEM = 4,
    IMR_EARG = 5
};

#define IMR_ERRLEN 200

/* Working memory reused from one image to the next (grown as needed); zero-initialise, free with
 * imr_scratch_free.  One per thread. */
typedef struct {
    unsigned char *buf;
    size_t cap;
} imr_scratch;

void imr_scratch_free(imr_scratch *scratch);

/* Image size from the header (no pixels decoded). */
int imr_jpeg_size(const unsigned char *data, size_t len, int *width, int *height, char *err);

/* Decode the part of the JPEG that box = (left, top, right, bottom) in image pixels needs, at the
 * largest DCT reduction (1/8, 1/4, 1/2) that keeps the box at least out_w x out_h, and resample the
 * box to out_w x out_h with Pillow's BILINEAR filter (Image.resize(size, BILINEAR, box)).  flip:
 * mirror left-right.  chw: write 3 planes (3 x out_h x out_w) instead of interleaved RGB
 * (out_h x out_w x 3).  out must hold 3 * out_w * out_h bytes.  scratch: NULL, or memory kept
 * between calls of one thread. */
int imr_decode_crop(const unsigned char *data, size_t len, const double box[4], int out_w, int out_h, int flip,
                    int chw, unsigned char *out, imr_scratch *scratch, char *err);

#endif
