/* imgprep native core; see core.h.
 *
 * Pipeline: tjDecompressToYUVPlanes with DCT-domain scaling (1/8..1) -> optional EXIF
 * orientation on the planes -> separable triangle-filter resample of each plane (Pillow's
 * BILINEAR convolution: same coefficients, same 22-bit fixed point, horizontal pass first)
 * -> padding -> tjCompressFromYUVPlanes (4:2:0 or grayscale).  Working on planes skips two
 * colour conversions and chroma upsampling; chroma is resampled at its subsampled size.
 */
#define _POSIX_C_SOURCE 200809L
#include "core.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <turbojpeg.h>

#define PRECISION_BITS (32 - 8 - 2) /* Pillow's Resample.c value for 8-bit images */
#define NEUTRAL 128

/* ------------------------------------------------------------------------------------------ */
/* EXIF orientation */

static unsigned long rd16(const unsigned char *p, int le) {
    return le ? (unsigned long)p[0] | (unsigned long)p[1] << 8 : (unsigned long)p[0] << 8 | p[1];
}

static unsigned long rd32(const unsigned char *p, int le) {
    return le ? rd16(p, 1) | rd16(p + 2, 1) << 16 : rd16(p, 0) << 16 | rd16(p + 2, 0);
}

static int tiff_orientation(const unsigned char *t, size_t n) {
    int le;
    size_t ifd, count, i;
    if (n < 8) return 1;
    if (t[0] == 'I' && t[1] == 'I') le = 1;
    else if (t[0] == 'M' && t[1] == 'M') le = 0;
    else return 1;
    if (rd16(t + 2, le) != 42) return 1;
    ifd = rd32(t + 4, le);
    if (ifd > n - 2) return 1;
    count = rd16(t + ifd, le);
    for (i = 0; i < count; i++) {
        size_t e = ifd + 2 + 12 * i;
        unsigned long type, v;
        if (e > n || n - e < 12) break;
        if (rd16(t + e, le) != 0x0112) continue;
        type = rd16(t + e + 2, le);
        v = type == 3 ? rd16(t + e + 8, le) : type == 4 ? rd32(t + e + 8, le) : 0;
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

int imp_exif_orientation(const unsigned char *d, size_t n) {
    size_t pos = 2;
    if (n < 4 || d[0] != 0xFF || d[1] != 0xD8) return 1;
    while (pos + 4 <= n) {
        unsigned m;
        size_t seg;
        if (d[pos] != 0xFF) return 1;
        m = d[pos + 1];
        if (m == 0xFF) { /* fill byte */
            pos++;
            continue;
        }
        if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) { /* markers without a length */
            pos += 2;
            continue;
        }
        if (m == 0xDA || m == 0xD9) return 1; /* scan or end: no Exif before the pixels */
        seg = rd16(d + pos + 2, 0);
        if (seg < 2 || seg > n - pos - 2) return 1;
        /* Pillow only looks at the first Exif APP1 segment; so do we */
        if (m == 0xE1 && seg >= 8 && memcmp(d + pos + 4, "Exif\0\0", 6) == 0)
            return tiff_orientation(d + pos + 10, seg - 8);
        pos += 2 + seg;
    }
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Errors */

static int tj_fail(tjhandle h, const char *what, char *err) {
    snprintf(err, IMP_ERRLEN, "%s: %s", what, tjGetErrorStr2(h));
    return tjGetErrorCode(h) == TJERR_WARNING ? IMP_EWARN : IMP_EBAD;
}

static int fail(int code, const char *msg, char *err) {
    snprintf(err, IMP_ERRLEN, "%s", msg);
    return code;
}

int imp_probe(const unsigned char *data, size_t len, imp_info *info, char *err) {
    int rc = IMP_OK;
    tjhandle h = tjInitDecompress();
    if (!h) return fail(IMP_ENOMEM, "cannot create a JPEG decompressor", err);
    if (tjDecompressHeader3(h, data, (unsigned long)len, &info->width, &info->height, &info->subsamp,
                            &info->colorspace) != 0) {
        /* TurboJPEG 2.1 cannot name some legal subsamplings: let the Pillow path try them */
        rc = strstr(tjGetErrorStr2(h), "subsampling") ? IMP_EUNSUPPORTED : IMP_EBAD;
        snprintf(err, IMP_ERRLEN, "cannot read JPEG header: %s", tjGetErrorStr2(h));
    } else {
        info->orientation = imp_exif_orientation(data, len);
    }
    tjDestroy(h);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Resampling: a port of Pillow's Resample.c (BILINEAR filter, 8 bits per sample) */

#define FIXED_TAPS 8
#define K16_BITS 14 /* 16-bit weights for the SSE2 8-tap path: +-1/32768 of Pillow's 22-bit ones */

typedef struct {
    int *bounds;  /* per output sample: first input index, number of taps */
    int32_t *kk;  /* ksize fixed-point weights per output sample */
    int16_t *k16; /* FIXED_TAPS 16-bit weights per output sample (ksize == FIXED_TAPS only) */
    int ksize;
} coeffs;

static double triangle(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Output sample xx is centred on input coordinate in0 + (xx + 0.5) * scale; taps are clamped
 * to [0, in_size) exactly as Pillow does for Image.resize(size, BILINEAR, box). */
static int precompute(int in_size, double in0, double scale, int out_size, coeffs *c) {
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    double *pre;
    int xx, x;
    if (!(support < 1e6)) return IMP_EARG; /* NaN or absurd: never from a sane plan */
    c->ksize = (int)ceil(support) * 2 + 1;
    /* Up to 8 taps (shrinking by less than 3.5x, the common case after DCT scaling) are padded
     * with zero weights to exactly FIXED_TAPS, so hpass can run a loop of constant length that
     * the compiler unrolls and vectorises; the sums, and so the pixels, are unchanged. */
    if (c->ksize <= FIXED_TAPS) c->ksize = FIXED_TAPS;
    c->bounds = malloc(sizeof(int) * 2 * (size_t)out_size);
    c->kk = malloc(sizeof(int32_t) * (size_t)c->ksize * (size_t)out_size);
    if (c->ksize == FIXED_TAPS) c->k16 = malloc(sizeof(int16_t) * FIXED_TAPS * (size_t)out_size);
    pre = malloc(sizeof(double) * (size_t)c->ksize);
    if (!c->bounds || !c->kk || !pre || (c->ksize == FIXED_TAPS && !c->k16)) {
        free(pre);
        return IMP_ENOMEM;
    }
    for (xx = 0; xx < out_size; xx++) {
        double center = in0 + (xx + 0.5) * scale;
        double ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        int xmax = (int)(center + support + 0.5);
        int32_t *k = &c->kk[(size_t)xx * c->ksize];
        if (xmin < 0) xmin = 0;
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (x = 0; x < xmax; x++) {
            double w = triangle((x + xmin - center + 0.5) * ss);
            pre[x] = w;
            ww += w;
        }
        if (xmax <= 0 || ww == 0.0) {
            /* A centre outside the plane (chroma edge samples can be): take the nearest
             * sample rather than Pillow's black, which would be a visible colour cast. */
            xmin = center < 0 ? 0 : center >= in_size ? in_size - 1 : (int)center;
            xmax = 1;
            pre[0] = 1.0;
            ww = 1.0;
        }
        for (x = 0; x < c->ksize; x++) {
            double v = x < xmax ? pre[x] / ww : 0.0;
            k[x] = (int32_t)(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
        }
        c->bounds[xx * 2] = xmin;
        c->bounds[xx * 2 + 1] = xmax;
        if (c->k16)
            for (x = 0; x < FIXED_TAPS; x++) {
                double v = x < xmax ? pre[x] / ww : 0.0;
                c->k16[(size_t)xx * FIXED_TAPS + x] = (int16_t)(v < 0 ? -0.5 + v * (1 << K16_BITS)
                                                                      : 0.5 + v * (1 << K16_BITS));
            }
    }
    free(pre);
    return IMP_OK;
}

static inline uint8_t clip8(int32_t in) {
    if (in >= (1 << PRECISION_BITS << 8)) return 255;
    if (in <= 0) return 0;
    return (uint8_t)(in >> PRECISION_BITS);
}

/* The resampling loops get an AVX2 clone chosen at load time (GCC's ifunc dispatch), so one
 * build runs everywhere and uses 256-bit vectors where the CPU has them. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define IMP_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define IMP_CLONES
#endif

IMP_CLONES static void hpass(const uint8_t *src, size_t sstride, int in_w, int row0, int nrows, const coeffs *cx,
                  int out_w, uint8_t *dst, size_t dstride) {
    /* Output samples whose FIXED_TAPS window stays inside the row take the constant-length
     * loop; the few at the right edge take the general one. */
    int fixed_end = 0;
    if (cx->ksize == FIXED_TAPS)
        while (fixed_end < out_w && cx->bounds[fixed_end * 2] + FIXED_TAPS <= in_w) fixed_end++;
    for (int y = 0; y < nrows; y++) {
        const uint8_t *s = src + (size_t)(row0 + y) * sstride;
        uint8_t *d = dst + (size_t)y * dstride;
        int xx = 0;
        for (; xx < fixed_end; xx++) {
            const uint8_t *p = s + cx->bounds[xx * 2];
#if defined(__SSE2__)
            /* 8 pixels widened to 16 bits, multiplied by 16-bit weights and summed in pairs
             * (pmaddwd), then the four partial sums added: ~8 instructions per output. */
            __m128i px = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)p), _mm_setzero_si128());
            __m128i prod = _mm_madd_epi16(px, _mm_loadu_si128((const __m128i *)&cx->k16[(size_t)xx * FIXED_TAPS]));
            prod = _mm_add_epi32(prod, _mm_shuffle_epi32(prod, _MM_SHUFFLE(1, 0, 3, 2)));
            prod = _mm_add_epi32(prod, _mm_shuffle_epi32(prod, _MM_SHUFFLE(2, 3, 0, 1)));
            int32_t ss = _mm_cvtsi128_si32(prod) + (1 << (K16_BITS - 1));
            d[xx] = ss <= 0 ? 0 : ss >= (256 << K16_BITS) ? 255 : (uint8_t)(ss >> K16_BITS);
#else
            const int32_t *k = &cx->kk[(size_t)xx * FIXED_TAPS];
            int32_t ss = 1 << (PRECISION_BITS - 1);
            for (int x = 0; x < FIXED_TAPS; x++) ss += p[x] * k[x];
            d[xx] = clip8(ss);
#endif
        }
        for (; xx < out_w; xx++) {
            const int32_t *k = &cx->kk[(size_t)xx * cx->ksize];
            const uint8_t *p = s + cx->bounds[xx * 2];
            int n = cx->bounds[xx * 2 + 1];
            int32_t ss = 1 << (PRECISION_BITS - 1);
            for (int x = 0; x < n; x++) ss += p[x] * k[x];
            d[xx] = clip8(ss);
        }
    }
}

/* Row-wise accumulation so the inner loop runs along contiguous memory and vectorises. */
IMP_CLONES static void vpass(const uint8_t *src, size_t sstride, int row_shift, const coeffs *cy, int out_w, int out_h,
                  uint8_t *dst, size_t dstride, int32_t *acc) {
    for (int yy = 0; yy < out_h; yy++) {
        const int32_t *k = &cy->kk[(size_t)yy * cy->ksize];
        int ymin = cy->bounds[yy * 2] - row_shift, n = cy->bounds[yy * 2 + 1];
        uint8_t *d = dst + (size_t)yy * dstride;
        for (int x = 0; x < out_w; x++) acc[x] = 1 << (PRECISION_BITS - 1);
        for (int t = 0; t < n; t++) {
            const uint8_t *s = src + (size_t)(ymin + t) * sstride;
            int32_t kt = k[t];
            for (int x = 0; x < out_w; x++) acc[x] += s[x] * kt;
        }
        for (int x = 0; x < out_w; x++) d[x] = clip8(acc[x]);
    }
}

/* Resample the in_w x in_h plane (stride sstride) into out_w x out_h at dst.  Like Pillow, a
 * pass whose axis is unchanged is skipped, so plain crops copy pixels exactly. */
static int resample(const uint8_t *src, int in_w, int in_h, size_t sstride, double in0x, double scx, double in0y,
                    double scy, int out_w, int out_h, uint8_t *dst, size_t dstride) {
    coeffs cx = {0}, cy = {0};
    uint8_t *tmp = NULL;
    int32_t *acc = NULL;
    int rc = IMP_OK;
    int need_h = !(in0x == 0.0 && scx == 1.0 && out_w == in_w);
    int need_v = !(in0y == 0.0 && scy == 1.0 && out_h == in_h);

    if (!need_h && !need_v) {
        for (int y = 0; y < out_h; y++) memcpy(dst + (size_t)y * dstride, src + (size_t)y * sstride, (size_t)out_w);
        return IMP_OK;
    }
    if ((rc = precompute(in_h, in0y, scy, out_h, &cy)) != IMP_OK) goto done;
    if (need_h && (rc = precompute(in_w, in0x, scx, out_w, &cx)) != IMP_OK) goto done;
    if (need_h && !need_v) {
        hpass(src, sstride, in_w, 0, out_h, &cx, out_w, dst, dstride);
        goto done;
    }
    acc = malloc(sizeof(int32_t) * (size_t)out_w);
    if (!acc) {
        rc = IMP_ENOMEM;
        goto done;
    }
    if (need_h) {
        int first = cy.bounds[0];
        int last = cy.bounds[(out_h - 1) * 2] + cy.bounds[(out_h - 1) * 2 + 1];
        if (last <= first) last = first + 1;
        tmp = malloc((size_t)out_w * (size_t)(last - first));
        if (!tmp) {
            rc = IMP_ENOMEM;
            goto done;
        }
        hpass(src, sstride, in_w, first, last - first, &cx, out_w, tmp, (size_t)out_w);
        vpass(tmp, (size_t)out_w, first, &cy, out_w, out_h, dst, dstride, acc);
    } else {
        vpass(src, sstride, 0, &cy, out_w, out_h, dst, dstride, acc);
    }
done:
    free(cx.bounds);
    free(cx.kk);
    free(cx.k16);
    free(cy.bounds);
    free(cy.kk);
    free(cy.k16);
    free(tmp);
    free(acc);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Orientation */

/* Source index of oriented pixel (x, y) is a + x*dx + y*dy (ImageOps.exif_transpose semantics). */
static void orient_steps(int o, int w, int h, ptrdiff_t stride, ptrdiff_t *a, ptrdiff_t *dx, ptrdiff_t *dy) {
    ptrdiff_t last_col = w - 1, last_row = (ptrdiff_t)(h - 1) * stride;
    switch (o) {
    case 2: *a = last_col; *dx = -1; *dy = stride; break;
    case 3: *a = last_row + last_col; *dx = -1; *dy = -stride; break;
    case 4: *a = last_row; *dx = 1; *dy = -stride; break;
    case 5: *a = 0; *dx = stride; *dy = 1; break;
    case 6: *a = last_row; *dx = -stride; *dy = 1; break;
    case 7: *a = last_row + last_col; *dx = -stride; *dy = -1; break;
    case 8: *a = last_col; *dx = stride; *dy = -1; break;
    default: *a = 0; *dx = 1; *dy = stride; break;
    }
}

/* One decoded plane, viewed in oriented coordinates. */
typedef struct {
    const uint8_t *data;
    int w, h;            /* valid size */
    size_t stride;
    int fx, fy;          /* subsampling factor relative to luma */
    double offx, offy;   /* luma-pixel shift of the sample grid on axes the orientation reversed */
} plane;

static int orient_plane(const uint8_t *src, int w, int h, size_t stride, int o, uint8_t **out, int *ow, int *oh) {
    ptrdiff_t a, dx, dy;
    int transposed = o >= 5;
    *ow = transposed ? h : w;
    *oh = transposed ? w : h;
    *out = malloc((size_t)w * (size_t)h);
    if (!*out) return IMP_ENOMEM;
    orient_steps(o, w, h, (ptrdiff_t)stride, &a, &dx, &dy);
    for (int y = 0; y < *oh; y++) {
        uint8_t *d = *out + (size_t)y * (size_t)*ow;
        const uint8_t *s = src + a + (ptrdiff_t)y * dy;
        for (int x = 0; x < *ow; x++) d[x] = s[(ptrdiff_t)x * dx];
    }
    return IMP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* The transform */

/* Fraction (in 1..2) of chroma sample j's two luma columns that hold image rather than padding;
 * columns past the canvas edge count as the edge column, which is what libjpeg replicates. */
static int inside(int j, int start, int len, int canvas) {
    int n = 0;
    for (int p = 2 * j; p < 2 * j + 2; p++) {
        int q = p < canvas ? p : canvas - 1;
        n += q >= start && q < start + len;
    }
    return n;
}

int imp_transform(const unsigned char *data, size_t len, const imp_job *job, unsigned char **out,
                  unsigned long *out_len, char *err) {
    tjhandle dec = NULL, enc = NULL;
    uint8_t *in_planes[3] = {NULL, NULL, NULL}, *or_planes[3] = {NULL, NULL, NULL};
    uint8_t *out_planes[3] = {NULL, NULL, NULL};
    int pw[3] = {0}, ph[3] = {0}, strides[3];
    plane pl[3];
    int w, h, ss, cs, nin, nout, sw, sh, ow, oh, rc = IMP_OK;
    int cw = job->canvas[0], ch = job->canvas[1], ox = job->offset[0], oy = job->offset[1];
    int rw = job->size[0], rh = job->size[1];
    int o = job->orientation;
    int opw, oph, out_ss;
    tjscalingfactor sf;
    double scx, scy;

    *out = NULL;
    *out_len = 0;
    if (job->scale != 1 && job->scale != 2 && job->scale != 4 && job->scale != 8)
        return fail(IMP_EARG, "scale must be 1, 2, 4 or 8", err);
    if (o < 1 || o > 8) return fail(IMP_EARG, "orientation must be 1..8", err);
    if (rw < 1 || rh < 1 || cw < rw || ch < rh || ox < 0 || oy < 0 || ox > cw - rw || oy > ch - rh)
        return fail(IMP_EARG, "inconsistent size, canvas and offset", err);
    if (cw > 65535 || ch > 65535) return fail(IMP_EARG, "output larger than 65535 pixels on a side", err);
    if (job->quality < 1 || job->quality > 100) return fail(IMP_EARG, "quality must be 1..100", err);
    if (!(job->box[2] > job->box[0] && job->box[3] > job->box[1]))
        return fail(IMP_EARG, "empty crop box", err);

    dec = tjInitDecompress();
    if (!dec) {
        rc = fail(IMP_ENOMEM, "cannot create a JPEG decompressor", err);
        goto cleanup;
    }
    if (tjDecompressHeader3(dec, data, (unsigned long)len, &w, &h, &ss, &cs) != 0) {
        rc = tj_fail(dec, "cannot read JPEG header", err);
        goto cleanup;
    }
    if ((cs != TJCS_YCbCr && cs != TJCS_GRAY) || ss < 0 || ss >= TJ_NUMSAMP) {
        rc = fail(IMP_EUNSUPPORTED, "JPEG colour space not handled natively", err);
        goto cleanup;
    }
    sf.num = 1;
    sf.denom = job->scale;
    sw = TJSCALED(w, sf);
    sh = TJSCALED(h, sf);
    ow = o >= 5 ? sh : sw;
    oh = o >= 5 ? sw : sh;
    if (job->box[0] < 0 || job->box[1] < 0 || job->box[2] > ow + 1e-9 || job->box[3] > oh + 1e-9) {
        rc = fail(IMP_EARG, "crop box outside the scaled image", err);
        goto cleanup;
    }
    nin = ss == TJSAMP_GRAY ? 1 : 3;
    for (int i = 0; i < nin; i++) {
        pw[i] = tjPlaneWidth(i, sw, ss);
        ph[i] = tjPlaneHeight(i, sh, ss);
        strides[i] = pw[i];
        if (pw[i] < 1 || ph[i] < 1) {
            rc = fail(IMP_EBAD, "bad plane size", err);
            goto cleanup;
        }
        in_planes[i] = malloc((size_t)pw[i] * (size_t)ph[i]);
        if (!in_planes[i]) {
            rc = fail(IMP_ENOMEM, "out of memory for decoded planes", err);
            goto cleanup;
        }
    }
    /* STOPONWARNING: truncated or corrupt scans are reported, never silently grey-filled */
    if (tjDecompressToYUVPlanes(dec, data, (unsigned long)len, in_planes, sw, strides, sh,
                                TJFLAG_STOPONWARNING) != 0) {
        rc = tj_fail(dec, "cannot decode JPEG", err);
        goto cleanup;
    }

    /* Oriented plane views.  The luma plane may be padded to the MCU; only sw x sh is image. */
    for (int i = 0; i < nin; i++) {
        int vw = i == 0 ? sw : pw[i], vh = i == 0 ? sh : ph[i];
        int fx = i == 0 ? 1 : tjMCUWidth[ss] / 8, fy = i == 0 ? 1 : tjMCUHeight[ss] / 8;
        /* a reversed axis moves the chroma grid by (plane size * factor - luma size) luma pixels */
        double shx = (double)vw * fx - sw, shy = (double)vh * fy - sh;
        ptrdiff_t a, dx, dy;
        orient_steps(o, vw, vh, strides[i], &a, &dx, &dy);
        if (o == 1) {
            pl[i].data = in_planes[i];
            pl[i].w = vw;
            pl[i].h = vh;
        } else {
            int rw2, rh2;
            if ((rc = orient_plane(in_planes[i], vw, vh, (size_t)strides[i], o, &or_planes[i], &rw2, &rh2)) != IMP_OK) {
                fail(rc, "out of memory for oriented planes", err);
                goto cleanup;
            }
            pl[i].data = or_planes[i];
            pl[i].w = rw2;
            pl[i].h = rh2;
        }
        pl[i].stride = o == 1 ? (size_t)strides[i] : (size_t)pl[i].w;
        if (o >= 5) {
            pl[i].fx = fy;
            pl[i].fy = fx;
            /* oriented x runs along source rows (dx is a multiple of the stride) */
            pl[i].offx = dx < 0 ? shy : 0.0;
            pl[i].offy = dy < 0 ? shx : 0.0;
        } else {
            pl[i].fx = fx;
            pl[i].fy = fy;
            pl[i].offx = dx < 0 ? shx : 0.0;
            pl[i].offy = dy < 0 ? shy : 0.0;
        }
    }

    /* Output planes: 4:2:0 luma is padded to even sizes, as the encoder reads whole MCUs. */
    nout = job->gray ? 1 : 3;
    out_ss = job->gray ? TJSAMP_GRAY : TJSAMP_420;
    opw = tjPlaneWidth(0, cw, out_ss);
    oph = tjPlaneHeight(0, ch, out_ss);
    for (int i = 0; i < nout; i++) {
        int qw = i == 0 ? opw : tjPlaneWidth(i, cw, out_ss), qh = i == 0 ? oph : tjPlaneHeight(i, ch, out_ss);
        strides[i] = qw;
        out_planes[i] = malloc((size_t)qw * (size_t)qh);
        if (!out_planes[i]) {
            rc = fail(IMP_ENOMEM, "out of memory for output planes", err);
            goto cleanup;
        }
        memset(out_planes[i], i == 0 ? job->pad : NEUTRAL, (size_t)qw * (size_t)qh);
    }

    scx = (job->box[2] - job->box[0]) / rw;
    scy = (job->box[3] - job->box[1]) / rh;
    rc = resample(pl[0].data, pl[0].w, pl[0].h, pl[0].stride, job->box[0], scx, job->box[1], scy, rw, rh,
                  out_planes[0] + (size_t)oy * strides[0] + ox, (size_t)strides[0]);
    if (rc != IMP_OK) {
        fail(rc, "cannot resample the luma plane", err);
        goto cleanup;
    }
    /* replicate the last column/row into the MCU padding, like libjpeg's edge expansion */
    for (int y = 0; y < ch; y++)
        for (int x = cw; x < opw; x++) out_planes[0][(size_t)y * strides[0] + x] = out_planes[0][(size_t)y * strides[0] + cw - 1];
    for (int y = ch; y < oph; y++)
        memcpy(out_planes[0] + (size_t)y * strides[0], out_planes[0] + (size_t)(ch - 1) * strides[0], (size_t)opw);

    if (nout == 3 && nin == 3) {
        /* chroma sample j of the output covers canvas luma columns 2j, 2j+1 */
        int j0 = ox / 2, j1 = (ox + rw + 1) / 2, k0 = oy / 2, k1 = (oy + rh + 1) / 2;
        for (int i = 1; i < 3; i++) {
            double in0x = (job->box[0] + (2 * j0 - ox) * scx + pl[i].offx) / pl[i].fx;
            double in0y = (job->box[1] + (2 * k0 - oy) * scy + pl[i].offy) / pl[i].fy;
            uint8_t *d = out_planes[i] + (size_t)k0 * strides[i] + j0;
            rc = resample(pl[i].data, pl[i].w, pl[i].h, pl[i].stride, in0x, 2 * scx / pl[i].fx, in0y,
                          2 * scy / pl[i].fy, j1 - j0, k1 - k0, d, (size_t)strides[i]);
            if (rc != IMP_OK) {
                fail(rc, "cannot resample a chroma plane", err);
                goto cleanup;
            }
            /* where a chroma sample straddles the image and the pad, blend as the encoder's 2x2
             * average of RGB pixels would (padding is neutral) */
            if (cw != rw || ch != rh) {
                for (int k = k0; k < k1; k++) {
                    int iy = inside(k, oy, rh, ch);
                    for (int j = j0; j < j1; j++) {
                        int a = inside(j, ox, rw, cw) * iy;
                        uint8_t *p = out_planes[i] + (size_t)k * strides[i] + j;
                        if (a < 4) *p = (uint8_t)((*p * a + NEUTRAL * (4 - a) + 2) / 4);
                    }
                }
            }
        }
    }

    /* TurboJPEG picks the fast integer DCT below q96; Pillow (and libjpeg) use the accurate one */
    enc = tjInitCompress();
    if (!enc) {
        rc = fail(IMP_ENOMEM, "cannot create a JPEG compressor", err);
        goto cleanup;
    }
    if (tjCompressFromYUVPlanes(enc, (const unsigned char **)out_planes, cw, strides, ch, out_ss, out, out_len,
                                job->quality, TJFLAG_ACCURATEDCT) != 0) {
        snprintf(err, IMP_ERRLEN, "cannot encode JPEG: %s", tjGetErrorStr2(enc));
        rc = IMP_EBAD;
        tjFree(*out);
        *out = NULL;
        *out_len = 0;
    }

cleanup:
    for (int i = 0; i < 3; i++) {
        free(in_planes[i]);
        free(or_planes[i]);
        free(out_planes[i]);
    }
    if (dec) tjDestroy(dec);
    if (enc) tjDestroy(enc);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Encoding in-memory pixels */

int imp_encode_pixels(const unsigned char *pixels, int width, int height, int channels, int quality,
                      unsigned char **out, unsigned long *out_len, char *err) {
    tjhandle enc = NULL;
    int rc = IMP_OK;
    *out = NULL;
    *out_len = 0;
    if (width < 1 || height < 1 || width > 65535 || height > 65535)
        return fail(IMP_EARG, "image size must be 1..65535 on each side", err);
    if (channels != 1 && channels != 3) return fail(IMP_EARG, "channels must be 1 or 3", err);
    if (quality < 1 || quality > 100) return fail(IMP_EARG, "quality must be 1..100", err);
    enc = tjInitCompress();
    if (!enc) return fail(IMP_ENOMEM, "cannot create a JPEG compressor", err);
    if (tjCompress2(enc, pixels, width, width * channels, height, channels == 1 ? TJPF_GRAY : TJPF_RGB, out,
                    out_len, channels == 1 ? TJSAMP_GRAY : TJSAMP_420, quality, TJFLAG_ACCURATEDCT) != 0) {
        rc = tj_fail(enc, "encode", err);
        tjFree(*out);
        *out = NULL;
        *out_len = 0;
    }
    tjDestroy(enc);
    return rc;
}
