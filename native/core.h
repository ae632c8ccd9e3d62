/* imgprep native core: JPEG -> YCbCr planes (DCT-scaled) -> crop/resize/pad -> JPEG.
 *
 * Pure C on top of libjpeg-turbo's TurboJPEG API (v2).  No Python here, so the same code
 * runs inside the extension (module.c) and in the bare benchmark loop (benchmarks/bare_loop.c).
 * Nothing in this file touches global state; every function is safe to call from many threads.
 */
#ifndef IMGPREP_NATIVE_CORE_H
#define IMGPREP_NATIVE_CORE_H

#include <stddef.h>

/* Return codes. */
enum {
    IMP_OK = 0,
    IMP_EBAD = 1,         /* corrupt data (fatal libjpeg error) */
    IMP_EUNSUPPORTED = 2, /* a valid image this path does not handle (CMYK, RGB JPEG, ...) */
    IMP_EWARN = 3,        /* libjpeg warning, e.g. truncated data (TJFLAG_STOPONWARNING) */
    IMP_ENOMEM = 4,
    IMP_EARG = 5          /* bad arguments from the caller */
};

#define IMP_ERRLEN 200

typedef struct {
    int width, height;  /* as stored in the file, before EXIF orientation */
    int subsamp;        /* TJSAMP_* */
    int colorspace;     /* TJCS_* */
    int orientation;    /* EXIF orientation 1..8 (1 when absent or invalid) */
} imp_info;

typedef struct {
    int scale;          /* DCT-domain reduction: 1, 2, 4 or 8 */
    int orientation;    /* 1..8, applied after decoding */
    double box[4];      /* left, top, right, bottom in oriented, *scaled* luma pixels (may be fractional) */
    int size[2];        /* width, height the box is resized to */
    int canvas[2];      /* output width, height (== size unless padding) */
    int offset[2];      /* where the resized box sits on the canvas */
    int gray;           /* 1: single-plane grayscale output; 0: YCbCr 4:2:0 */
    int quality;        /* 1..100 */
    int pad;            /* luma of the padding (chroma is neutral) */
} imp_job;

/* Header probe; never decodes pixels. */
int imp_probe(const unsigned char *data, size_t len, imp_info *info, char *err);

/* The whole transform.  On IMP_OK *out holds a JPEG allocated with tjAlloc (free it with tjFree). */
int imp_transform(const unsigned char *data, size_t len, const imp_job *job, unsigned char **out,
                  unsigned long *out_len, char *err);

/* EXIF orientation from the first APP1 "Exif" segment before the scan; 1 when absent/invalid. */
int imp_exif_orientation(const unsigned char *data, size_t len);

/* Encode 8-bit pixels (channels 1: grayscale JPEG; 3: RGB, 4:2:0) at quality, accurate DCT as
 * Pillow uses.  For in-memory datasets (IDX arrays) where Pillow's per-call overhead dominates.
 * On success *out must be released with tjFree. */
int imp_encode_pixels(const unsigned char *pixels, int width, int height, int channels, int quality,
                      unsigned char **out, unsigned long *out_len, char *err);

/* Decode a whole JPEG at the largest DCT reduction (1/8, 1/4, 1/2, 1) that keeps both sides at
 * least min_side, and keep only the luma plane: every entropy-coded byte is still decoded (so
 * corrupt or truncated scans are caught, TJFLAG_STOPONWARNING), but the inverse DCT and colour
 * work shrink with the scale.  For verify (min_side 1: cheapest full check) and for perceptual
 * hashes (a small grey thumbnail).  On IMP_OK *luma (malloc'd, free it with free()) holds
 * sw x sh bytes, row stride sw; components is 1 (grey) or 3 (YCbCr). */
typedef struct {
    int width, height, components;
    int sw, sh;
} imp_luma;

int imp_decode_luma(const unsigned char *data, size_t len, int min_side, imp_luma *info, unsigned char **luma,
                    char *err);
/* imp_decode_luma, and for a colour JPEG (chroma not NULL) its Cb and Cr planes at half the luma's
 * resolution (ceil(sw / 2) x ceil(sh / 2)) in one buffer (*chroma NULL for a grey one); the caller frees both. */
int imp_decode_ycc(const unsigned char *data, size_t len, int min_side, imp_luma *info, unsigned char **luma,
                   unsigned char **chroma, char *err);

#endif
