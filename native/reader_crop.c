/* Decode only what a crop needs, then resample it (see reader_crop.h).
 *
 * libjpeg decodes in iMCU rows and columns: jpeg_crop_scanline narrows the decode to the iMCU
 * columns around the crop, jpeg_skip_scanlines passes over the rows above it without the
 * inverse DCT, colour conversion or upsampling, and the rows below are never read.  With DCT
 * scaling the inverse DCT itself produces a 1/2, 1/4 or 1/8 size image when the crop is at least
 * twice (four, eight times) the output size.
 *
 * The resampler is Pillow's: triangle filter, support scaled by the reduction, coefficients in
 * 22-bit fixed point, horizontal pass first, then vertical, both rounding to 8 bits.  The box and
 * the edge clipping follow Image.resize(size, BILINEAR, box), so the Pillow fallback and this
 * path agree up to what DCT scaling changes.
 */
#include "reader_crop.h"

#include <math.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#define PRECISION_BITS (32 - 8 - 2)

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int warned;
    char message[JMSG_LENGTH_MAX];
} err_mgr;

static void on_error(j_common_ptr cinfo) {
    err_mgr *e = (err_mgr *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->message);
    longjmp(e->jump, 1);
}

/* Level -1 is a warning (corrupt or truncated data): remembered, the decode is then left to Pillow. */
static void on_message(j_common_ptr cinfo, int level) {
    err_mgr *e = (err_mgr *)cinfo->err;
    if (level < 0 && !e->warned) {
        e->warned = 1;
        (*cinfo->err->format_message)(cinfo, e->message);
    }
}

static int fail(int rc, const char *msg, char *err) {
    snprintf(err, IMR_ERRLEN, "%s", msg);
    return rc;
}

static void setup(struct jpeg_decompress_struct *cinfo, err_mgr *e) {
    memset(e, 0, sizeof(*e));
    cinfo->err = jpeg_std_error(&e->pub);
    e->pub.error_exit = on_error;
    e->pub.emit_message = on_message;
}

int imr_jpeg_size(const unsigned char *data, size_t len, int *width, int *height, char *err) {
    struct jpeg_decompress_struct cinfo;
    err_mgr e;
    setup(&cinfo, &e);
    if (setjmp(e.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return fail(IMR_EBAD, e.message, err);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    *width = (int)cinfo.image_width;
    *height = (int)cinfo.image_height;
    jpeg_destroy_decompress(&cinfo);
    return IMR_OK;
}

/* ------------------------------------------------------------------ Pillow's coefficients */

typedef struct {
    int ksize;
    int *bounds;  /* per output sample: first input sample, count */
    int32_t *k;   /* ksize weights per output sample */
} coeffs;

static double triangle(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static int precompute(int in_size, double in0, double in1, int out_size, coeffs *c) {
    double scale = (in1 - in0) / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *kd = malloc(sizeof(double) * ksize);
    c->ksize = ksize;
    c->bounds = malloc(sizeof(int) * 2 * out_size);
    c->k = malloc(sizeof(int32_t) * (size_t)ksize * out_size);
    if (!kd || !c->bounds || !c->k) {
        free(kd);
        return 0;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = in0 + (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double w = triangle((x + xmin - center + 0.5) * ss);
            kd[x] = w;
            ww += w;
        }
        /* Taps whose weight rounds to zero at either end are dropped: the triangle's support
         * reaches one sample further than its non-zero part, a third of the work when enlarging. */
        int first = 0, last = xmax;
        int32_t *k = c->k + (size_t)xx * ksize;
        for (int x = 0; x < xmax; x++) {
            double w = ww != 0.0 ? kd[x] / ww : 0.0;
            k[x] = (int32_t)(w < 0 ? w * (1 << PRECISION_BITS) - 0.5 : w * (1 << PRECISION_BITS) + 0.5);
        }
        while (first < last && k[first] == 0) first++;
        while (last > first && k[last - 1] == 0) last--;
        if (first == last) last = first + 1; /* all zero (cannot happen for a triangle): keep one tap */
        memmove(k, k + first, sizeof(int32_t) * (size_t)(last - first));
        for (int x = last - first; x < ksize; x++) k[x] = 0;
        c->bounds[xx * 2] = xmin + first;
        c->bounds[xx * 2 + 1] = last - first;
    }
    free(kd);
    return 1;
}

static void free_coeffs(coeffs *c) {
    free(c->bounds);
    free(c->k);
    c->bounds = NULL;
    c->k = NULL;
}

/* The two passes are compiled twice, for AVX2 and for the x86-64 baseline, and picked when the
 * library loads (GCC's target_clones): one build runs on any x86-64 and uses AVX2 where it exists. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define HOT __attribute__((target_clones("avx2", "default")))
#else
#define HOT
#endif

static inline uint8_t clip8(int32_t v) {
    v >>= PRECISION_BITS;
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* One axis resampled along the rows of a byte plane: out_n rows of width bytes from rows
 * y0.. of src (the coefficients' sample 0 is row y0).  Vectorises: the inner loop runs along a row. */
HOT static void rows_pass(const uint8_t *src, size_t sstride, int width, int y0, const coeffs *c, int out_n,
                          int32_t *acc, uint8_t *dst, size_t dstride) {
    for (int yy = 0; yy < out_n; yy++) {
        int ymin = c->bounds[yy * 2] - y0, n = c->bounds[yy * 2 + 1];
        const int32_t *k = c->k + (size_t)yy * c->ksize;
        for (int i = 0; i < width; i++) acc[i] = 1 << (PRECISION_BITS - 1);
        for (int y = 0; y < n; y++) {
            const uint8_t *line = src + (size_t)(ymin + y) * sstride;
            int32_t w = k[y];
            for (int i = 0; i < width; i++) acc[i] += line[i] * w;
        }
        uint8_t *o = dst + (size_t)yy * dstride;
        for (int i = 0; i < width; i++) o[i] = clip8(acc[i]);
    }
}

/* h x w RGB pixels (row stride sstride) -> w x h RGB pixels, tightly packed. */
static void transpose3(const uint8_t *src, size_t sstride, int h, int w, uint8_t *dst) {
    for (int y0 = 0; y0 < h; y0 += 16) {
        int y1 = y0 + 16 < h ? y0 + 16 : h;
        for (int x = 0; x < w; x++) {
            uint8_t *d = dst + ((size_t)x * h + y0) * 3;
            const uint8_t *p = src + (size_t)y0 * sstride + (size_t)x * 3;
            for (int y = y0; y < y1; y++, d += 3, p += sstride) {
                d[0] = p[0];
                d[1] = p[1];
                d[2] = p[2];
            }
        }
    }
}

/* Vertical pass into the output, mirrored and/or planar as asked: each row is resampled into
 * `line` (vectorised), then copied, mirrored or split into planes. */
HOT static void vertical(const uint8_t *src, int width3, int y0, const coeffs *cy, int out_h, int flip, int chw,
                         int32_t *acc, uint8_t *line, uint8_t *out) {
    int out_w = width3 / 3;
    size_t plane = (size_t)out_w * out_h;
    for (int yy = 0; yy < out_h; yy++) {
        int direct = !flip && !chw;
        uint8_t *row = direct ? out + (size_t)yy * width3 : line;
        coeffs one = {cy->ksize, cy->bounds + 2 * yy, cy->k + (size_t)yy * cy->ksize}; /* output row yy's */
        rows_pass(src, (size_t)width3, width3, y0, &one, 1, acc, row, 0);
        if (direct) continue;
        if (chw) {
            uint8_t *r = out + (size_t)yy * out_w, *g = r + plane, *b = g + plane;
            for (int x = 0; x < out_w; x++) {
                int xo = flip ? out_w - 1 - x : x;
                r[xo] = line[x * 3];
                g[xo] = line[x * 3 + 1];
                b[xo] = line[x * 3 + 2];
            }
        } else {
            uint8_t *o = out + (size_t)yy * width3;
            for (int x = 0; x < out_w; x++) memcpy(o + (size_t)(out_w - 1 - x) * 3, line + x * 3, 3);
        }
    }
}

/* Every output sample is one input sample with weight 1, the next one's successor. */
static int is_copy(const coeffs *c, int out_size) {
    for (int i = 0; i < out_size; i++)
        if (c->bounds[i * 2 + 1] != 1 || c->k[(size_t)i * c->ksize] != (1 << PRECISION_BITS) ||
            c->bounds[i * 2] != c->bounds[0] + i)
            return 0;
    return 1;
}

static void copy_out(const uint8_t *src, size_t stride, int x0, int y0, int out_w, int out_h, int flip, int chw,
                     uint8_t *out) {
    size_t plane = (size_t)out_w * out_h;
    for (int y = 0; y < out_h; y++) {
        const uint8_t *line = src + (size_t)(y0 + y) * stride + (size_t)x0 * 3;
        if (!chw && !flip) {
            memcpy(out + (size_t)y * out_w * 3, line, (size_t)out_w * 3);
            continue;
        }
        for (int x = 0; x < out_w; x++) {
            int xo = flip ? out_w - 1 - x : x;
            if (chw) {
                out[(size_t)y * out_w + xo] = line[x * 3];
                out[plane + (size_t)y * out_w + xo] = line[x * 3 + 1];
                out[2 * plane + (size_t)y * out_w + xo] = line[x * 3 + 2];
            } else {
                memcpy(out + ((size_t)y * out_w + xo) * 3, line + x * 3, 3);
            }
        }
    }
}

/* First and one-past-last input sample any output sample reads. */
static void span(const coeffs *c, int out_size, int *lo, int *hi) {
    *lo = c->bounds[0];
    *hi = c->bounds[0] + c->bounds[1];
    for (int i = 1; i < out_size; i++) {
        if (c->bounds[i * 2] < *lo) *lo = c->bounds[i * 2];
        if (c->bounds[i * 2] + c->bounds[i * 2 + 1] > *hi) *hi = c->bounds[i * 2] + c->bounds[i * 2 + 1];
    }
}

typedef struct {
    coeffs cx, cy;
    uint8_t *rows, *tmp, *t1, *t2;
    int32_t *acc;
    uint8_t *owned; /* the buffers' memory when no scratch was given */
} work;

static void release(work *w) {
    free_coeffs(&w->cx);
    free_coeffs(&w->cy);
    free(w->owned);
    free(w);
}

void imr_scratch_free(imr_scratch *scratch) {
    free(scratch->buf);
    scratch->buf = NULL;
    scratch->cap = 0;
}

static size_t up64(size_t n) { return (n + 63) & ~(size_t)63; }

int imr_decode_crop(const unsigned char *data, size_t len, const double box[4], int out_w, int out_h, int flip,
                    int chw, unsigned char *out, imr_scratch *scratch, char *err) {
    struct jpeg_decompress_struct cinfo;
    err_mgr e;
    int rc = IMR_OK;
    if (out_w < 1 || out_h < 1) return fail(IMR_EARG, "output size must be positive", err);
    /* On the heap, its pointer set before setjmp: what longjmp comes back to must still be valid. */
    work *const wp = calloc(1, sizeof(work));
    if (!wp) return fail(IMR_ENOMEM, "out of memory", err);
    setup(&cinfo, &e);
    if (setjmp(e.jump)) {
        jpeg_destroy_decompress(&cinfo);
        release(wp);
        return fail(IMR_EBAD, e.message, err);
    }
#define w (*wp)
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&cinfo);
        release(wp);
        return fail(IMR_EUNSUPPORTED, "CMYK/YCCK JPEG", err);
    }
    double iw = cinfo.image_width, ih = cinfo.image_height;
    double x0 = box[0] < 0 ? 0 : box[0], y0 = box[1] < 0 ? 0 : box[1];
    double x1 = box[2] > iw ? iw : box[2], y1 = box[3] > ih ? ih : box[3];
    if (!(x1 > x0 && y1 > y0)) {
        jpeg_destroy_decompress(&cinfo);
        release(wp);
        return fail(IMR_EARG, "the crop box is empty or outside the image", err);
    }
    int denom = 1;
    for (int d = 8; d > 1; d /= 2) {
        if ((x1 - x0) / d >= out_w && (y1 - y0) / d >= out_h) {
            denom = d;
            break;
        }
    }
    cinfo.scale_num = 1;
    cinfo.scale_denom = (unsigned int)denom;
    cinfo.out_color_space = JCS_RGB;
    cinfo.dct_method = JDCT_ISLOW;
    jpeg_start_decompress(&cinfo);
    int sw = (int)cinfo.output_width, sh = (int)cinfo.output_height;
    /* Scaled pixel k covers stored pixels denom*k .. denom*k + denom - 1 (the last one may reach past
     * the edge), so positions scale by exactly 1/denom, not by output_width / image_width. */
    double fx = 1.0 / denom, fy = fx;
    if (!precompute(sw, x0 * fx, x1 * fx, out_w, &w.cx) || !precompute(sh, y0 * fy, y1 * fy, out_h, &w.cy)) {
        rc = fail(IMR_ENOMEM, "out of memory", err);
        goto done;
    }
    int col0, col1, row0, row1;
    span(&w.cx, out_w, &col0, &col1);
    span(&w.cy, out_h, &row0, &row1);
    JDIMENSION xoff = (JDIMENSION)col0, cw = (JDIMENSION)(col1 - col0);
    if (cw < (JDIMENSION)sw) jpeg_crop_scanline(&cinfo, &xoff, &cw);
    else xoff = 0, cw = (JDIMENSION)sw;
    size_t stride = (size_t)cinfo.output_width * 3;
    int rows = row1 - row0;
    /* One block for all buffers, kept in the caller's scratch between images of a batch: fresh
     * pages for every image cost the kernel a page fault and a clear per 4 KiB. */
    size_t sizes[5] = {up64(stride * rows), up64((size_t)out_w * 3 * rows), up64((size_t)cw * rows * 3),
                       up64((size_t)out_w * rows * 3), up64(sizeof(int32_t) * (size_t)(out_w > rows ? out_w : rows) * 3)};
    size_t need = sizes[0] + sizes[1] + sizes[2] + sizes[3] + sizes[4];
    uint8_t *block;
    if (scratch) {
        if (scratch->cap < need) {
            free(scratch->buf);
            scratch->buf = malloc(need);
            scratch->cap = scratch->buf ? need : 0;
        }
        block = scratch->buf;
    } else {
        block = w.owned = malloc(need);
    }
    if (!block) {
        rc = fail(IMR_ENOMEM, "out of memory", err);
        goto done;
    }
    w.rows = block;
    w.tmp = w.rows + sizes[0];
    w.t1 = w.tmp + sizes[1];
    w.t2 = w.t1 + sizes[2];
    w.acc = (int32_t *)(w.t2 + sizes[3]);
    if (row0 > 0 && (int)jpeg_skip_scanlines(&cinfo, (JDIMENSION)row0) != row0) {
        rc = fail(IMR_EBAD, "cannot skip to the crop's first row", err);
        goto done;
    }
    for (int got = 0; got < rows;) {
        JSAMPROW line = w.rows + stride * got;
        if (jpeg_read_scanlines(&cinfo, &line, 1) != 1) {
            rc = fail(IMR_EBAD, "fewer rows than the header says", err);
            goto done;
        }
        got++;
    }
    if (e.warned) {
        rc = fail(IMR_EWARN, e.message, err);
        goto done;
    }
    if (is_copy(&w.cx, out_w) && is_copy(&w.cy, out_h))  /* a whole-pixel crop at scale 1 (eval on packed data) */
        copy_out(w.rows, stride, w.cx.bounds[0] - (int)xoff, w.cy.bounds[0] - row0, out_w, out_h, flip, chw, out);
    else {
        /* The horizontal pass (Pillow's first) runs along the rows of the transposed crop, where
         * it vectorises like the vertical one; the arithmetic is the same, so are the pixels. */
        transpose3(w.rows, stride, rows, (int)cw, w.t1);
        rows_pass(w.t1, (size_t)rows * 3, rows * 3, (int)xoff, &w.cx, out_w, w.acc, w.t2, (size_t)rows * 3);
        transpose3(w.t2, (size_t)rows * 3, out_w, rows, w.tmp);
        vertical(w.tmp, out_w * 3, row0, &w.cy, out_h, flip, chw, w.acc, w.t2, out);
    }
done:
    jpeg_abort_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    release(wp);
    return rc;
#undef w
}
