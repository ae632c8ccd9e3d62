/* imgprep's duplicate fingerprint (imgprep/imaging/phash.py) in one call per image, GIL released:
 * the content box inside uniform bars, the outliers clipped, the crop windows, the 8x8 DCT blocks
 * of their area averages, the canonical orientation, the median bits and the alternates.
 *
 * Every step follows the numpy fallback operation for operation: the same integer cell edges and
 * exact integer sums, and every floating-point sum taken in the same order (left to right, no
 * fused multiply-add), so both paths give the same bits, not merely close coefficients.  The
 * Python side keeps only what is cheap: the alternates' de-duplication and the Fingerprint.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* a*b+c stays two roundings, as in numpy (GCC's ISO C mode already keeps it so) */
#endif

#include "phash.h"

#define SIDE 32
#define LOW 8
#define CSIDE 8 /* a colour channel's thumbnail side (phash.CHROMA_SIDE) */
#define CLOW 4  /* its DCT block kept (phash.CHROMA_LOW) */
#define UNKNOWN 0xFFFFu

/* Integral images' words wrap (arithmetic mod 2^32): a cell's sum, the difference of four of them,
 * is exact while it is under 2^31 (CELL_LIMIT), and 32-bit words are half the memory traffic of
 * 64-bit ones, with vector conversions to double. */
typedef uint32_t sum_t;
#define CELL_LIMIT (INT32_MAX / 255) /* pixels a cell may hold: its sum then fits an int32 */

/* A cell's exact sum from four wrapped integral words (under 2^31, so the int32 is the sum). */
static inline int32_t cell_sum(sum_t a, sum_t b, sum_t c, sum_t d) { return (int32_t)((a - b) - (c - d)); }

/* Leading run of lines (rows of `img` viewed with strides) that are bars: a spread of at most
 * tol and a mean within tol of the first line's. */
static int bar_run(const uint8_t *img, ptrdiff_t line_step, ptrdiff_t pixel_step, int lines, int pixels, int tol) {
    double first = 0;
    for (int i = 0; i < lines; i++) {
        const uint8_t *p = img + i * line_step;
        int lo = 255, hi = 0;
        double sum = 0;
        for (int k = 0; k < pixels; k++) {
            int v = p[k * pixel_step];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            sum += v;
        }
        double mean = sum / pixels;
        if (i == 0) first = mean;
        if (hi - lo > tol || fabs(mean - first) > tol) return i;
    }
    return lines;
}

void imp_content_box(const uint8_t *img, int h, int w, int tol, int peels, int box[4]) {
    int top = 0, bottom = 0, left = 0, right = 0;
    for (int round = 0; round < peels; round++) {
        int rows = h - top - bottom, cols = w - left - right;
        const uint8_t *origin = img + (ptrdiff_t)top * w + left;
        int t = bar_run(origin, w, 1, rows, cols, tol);
        int b = bar_run(origin + (ptrdiff_t)(rows - 1) * w, -w, 1, rows, cols, tol);
        if (top + t + bottom + b >= h) {
            box[0] = box[1] = box[2] = box[3] = 0;
            return;
        }
        top += t;
        bottom += b;
        rows = h - top - bottom;
        origin = img + (ptrdiff_t)top * w + left;
        int l = bar_run(origin, 1, w, cols, rows, tol);
        int r = bar_run(origin + cols - 1, -1, w, cols, rows, tol);
        if (left + l + right + r >= w) {
            box[0] = box[1] = box[2] = box[3] = 0;
            return;
        }
        left += l;
        right += r;
        if (!(t || b || l || r)) break;
    }
    box[0] = top;
    box[1] = h - bottom;
    box[2] = left;
    box[3] = w - right;
}

static inline __attribute__((always_inline)) void edges(int64_t lo, int64_t hi, int64_t *start, int64_t *stop, int side) {
    int64_t span = hi - lo;
    for (int i = 0; i < side; i++) {
        start[i] = lo + (i * span) / side;
        int64_t s = lo + ((i + 1) * span) / side;
        stop[i] = s > start[i] + 1 ? s : start[i] + 1;
    }
}

PyObject *imp_py_phash_box(PyObject *self, PyObject *args) {
    Py_buffer view;
    int h, w, tol, peels, box[4];
    (void)self;
    if (!PyArg_ParseTuple(args, "y*iiii:phash_box", &view, &h, &w, &tol, &peels)) return NULL;
    if (h < 1 || w < 1 || view.len < (Py_ssize_t)h * w) {
        PyBuffer_Release(&view);
        return PyErr_Format(PyExc_ValueError, "luma buffer smaller than %d x %d", h, w);
    }
    Py_BEGIN_ALLOW_THREADS
    imp_content_box(view.buf, h, w, tol, peels, box);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return Py_BuildValue("(iiii)", box[0], box[1], box[2], box[3]);
}

/* ---- the whole fingerprint in one call ------------------------------------------------------- */

/* Eight floats for the vector loops: each lane takes the same IEEE operations in the same order as
 * the scalar code it replaces, so the same bits. */
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
/* macros, not functions: an inline function built for the default target is not inlined into the
 * AVX2 clones of its callers */
#define LOAD8(p) __extension__({ v8f v_; memcpy(&v_, (p), sizeof v_); v_; })
#define SPLAT8(x) __extension__({ float x_ = (x); (v8f){x_, x_, x_, x_, x_, x_, x_, x_}; })
_Static_assert(SIDE % 8 == 0 && LOW == 8 && CSIDE == 8, "the vector loops take rows of eight");

/* Wider vectors where the CPU has them: the same IEEE operations in the same order, so the same
 * bits (no fused multiply-add: the build is ISO C, which keeps a*b+c two roundings). */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define WIDE __attribute__((target_clones("avx2", "default")))
#else
#define WIDE
#endif

/* Python's round(): to nearest, ties to even (the default rounding mode's nearbyint). */
static int64_t round_even(double x) { return (int64_t)nearbyint(x); }

/* The content box, then 5% and 10% off every side (centred) and off two adjacent sides (the four
 * corners), then 7.5% off one side: phash._boxes, in its order. */
static int make_boxes(const int box[4], const print_params *p, int64_t out[MAX_BOXES][4]) {
    int64_t top = box[0], bottom = box[1], left = box[2], right = box[3], h = bottom - top, w = right - left;
    int n = 0;
    out[n][0] = top, out[n][1] = bottom, out[n][2] = left, out[n][3] = right, n++;
    for (int c = 0; c < 2; c++) {
        int64_t dh = round_even((double)h * p->cut[c]), dw = round_even((double)w * p->cut[c]);
        out[n][0] = top + dh, out[n][1] = bottom - dh, out[n][2] = left + dw, out[n][3] = right - dw, n++;
        for (int yi = 0; yi < 2; yi++)
            for (int xi = 0; xi < 2; xi++) {
                int64_t y = yi ? dh : 0, x = xi ? dw : 0;
                out[n][0] = top + y, out[n][1] = bottom - dh + y, out[n][2] = left + x, out[n][3] = right - dw + x, n++;
            }
    }
    int64_t dh = round_even((double)h * p->side_cut), dw = round_even((double)w * p->side_cut);
    int64_t sides[4][4] = {{top + dh, bottom, left, right}, {top, bottom - dh, left, right},
                           {top, bottom, left + dw, right}, {top, bottom, left, right - dw}};
    for (int s = 0; s < 4; s++, n++) memcpy(out[n], sides[s], sizeof sides[s]);
    return n;
}

/* phash._clip_outliers: the grey levels of the content box's CLIP..100-CLIP percentiles (lo, hi). */
static void clip_levels(const uint8_t *img, int w, const int box[4], double clip, int *lo, int *hi) {
    int64_t cdf[256], part[4][256] = {{0}}; /* four counters: runs of one level do not wait on one counter */
    for (int y = box[0]; y < box[1]; y++) {
        const uint8_t *row = img + (size_t)y * w;
        int x = box[2];
        for (; x + 4 <= box[3]; x += 4) {
            part[0][row[x]]++;
            part[1][row[x + 1]]++;
            part[2][row[x + 2]]++;
            part[3][row[x + 3]]++;
        }
        for (; x < box[3]; x++) part[0][row[x]]++;
    }
    for (int v = 0; v < 256; v++) cdf[v] = part[0][v] + part[1][v] + part[2][v] + part[3][v] + (v ? cdf[v - 1] : 0);
    double total = (double)cdf[255], want[2] = {total * clip / 100, total * (100 - clip) / 100};
    int found[2];
    for (int k = 0; k < 2; k++) { /* numpy.searchsorted, side left: the first level whose count reaches it */
        int v = 0;
        while (v < 256 && (double)cdf[v] < want[k]) v++;
        found[k] = v;
    }
    *lo = found[0], *hi = found[1];
}

/* The 8x8 DCT block of a thumbnail, in single precision (twice the values per vector instruction;
 * the median bits need no more).  A DCT row u is symmetric about the middle for even u and
 * antisymmetric for odd u, so each stage runs on the sums (even rows) and differences (odd rows)
 * of mirrored values: half the products.  Every sum left to right; phash._dct does the same. */
WIDE static void dct_block(double thumb[SIDE][SIDE], const float *dct, float out[LOW][LOW]) {
    float fold[2][SIDE / 2][SIDE], half[LOW][SIDE];
    for (int i = 0; i < SIDE / 2; i++)
        for (int j = 0; j < SIDE; j++) {
            float a = (float)thumb[i][j], b = (float)thumb[SIDE - 1 - i][j];
            fold[0][i][j] = a + b;
            fold[1][i][j] = a - b;
        }
    for (int u = 0; u < LOW; u++) { /* a row of 32 sums in four vectors, kept in registers down the rows */
        const float *f = &fold[u & 1][0][0];
        v8f acc[SIDE / 8];
        for (int q = 0; q < SIDE / 8; q++) acc[q] = SPLAT8(dct[u * SIDE]) * LOAD8(f + 8 * q);
        for (int i = 1; i < SIDE / 2; i++) {
            v8f d = SPLAT8(dct[u * SIDE + i]);
            for (int q = 0; q < SIDE / 8; q++) acc[q] = acc[q] + d * LOAD8(f + i * SIDE + 8 * q);
        }
        for (int q = 0; q < SIDE / 8; q++) memcpy(&half[u][8 * q], &acc[q], sizeof acc[q]);
    }
    v8f even[SIDE / 2], odd[SIDE / 2]; /* per column pair, the sum and the difference, the LOW rows u side by side */
    for (int j = 0; j < SIDE / 2; j++) {
        v8f a, b;
        for (int u = 0; u < LOW; u++) a[u] = half[u][j], b[u] = half[u][SIDE - 1 - j];
        even[j] = a + b;
        odd[j] = a - b;
    }
    for (int v = 0; v < LOW; v++) {
        const v8f *hf = v & 1 ? odd : even;
        v8f acc = hf[0] * SPLAT8(dct[v * SIDE]);
        for (int j = 1; j < SIDE / 2; j++) acc = acc + hf[j] * SPLAT8(dct[v * SIDE + j]);
        for (int u = 0; u < LOW; u++) out[u][v] = acc[u];
    }
}

/* phash._bits: each coefficient above the block's median (the mean of its 32nd and 33rd values).
 * The k-th value is the largest whose count of smaller values is at most k.  Every value's count
 * is taken at once, eight values to a vector: no branch on the data (a sort or selection of 64
 * values mispredicts most of its), and a fixed 64 x 64 comparisons, eight at a time. */
WIDE static uint64_t median_bits(const float block[LOW][LOW]) {
    const float *flat = &block[0][0];
    v8f x[LOW];
    v8i below[LOW];
    for (int b = 0; b < LOW; b++) {
        x[b] = LOAD8(flat + 8 * b);
        below[b] = (v8i){0};
    }
    for (int j = 0; j < LOW * LOW; j++) {
        v8f y = SPLAT8(flat[j]);
        for (int b = 0; b < LOW; b++) below[b] -= y < x[b]; /* a true comparison is -1 */
    }
    v8f lows = SPLAT8(-INFINITY), highs = lows; /* per lane, then across the lanes */
    for (int b = 0; b < LOW; b++) {
        v8i take_low = (below[b] <= 31) & (x[b] > lows), take_high = (below[b] <= 32) & (x[b] > highs);
        lows = (v8f)(((v8i)x[b] & take_low) | ((v8i)lows & ~take_low));
        highs = (v8f)(((v8i)x[b] & take_high) | ((v8i)highs & ~take_high));
    }
    float low = -INFINITY, high = -INFINITY;
    for (int k = 0; k < 8; k++) {
        low = lows[k] > low ? lows[k] : low;
        high = highs[k] > high ? highs[k] : high;
    }
    float middle = (low + high) / 2;
    uint64_t bits = 0;
    for (int i = 0; i < LOW * LOW; i++) bits |= (uint64_t)(flat[i] > middle) << (LOW * LOW - 1 - i);
    return bits;
}

/* An n x n block of DCT coefficients (`src`, row-major) transposed or not, its odd frequencies
 * negated along each flipped axis: how a turn or flip of the image moves them. */
static void orient_n(const float *src, int n, int transpose, int vflip, int hflip, float *out) {
    for (int u = 0; u < n; u++)
        for (int v = 0; v < n; v++) {
            float c = transpose ? src[v * n + u] : src[u * n + v];
            if (vflip && (u & 1)) c = -c;
            if (hflip && (v & 1)) c = -c;
            out[u * n + v] = c;
        }
}

static void orient(const float src[LOW][LOW], int transpose, int vflip, int hflip, float out[LOW][LOW]) {
    orient_n(&src[0][0], LOW, transpose, vflip, hflip, &out[0][0]);
}

/* phash._alternates: the orientations of box 0 too close to call, hashed (the first is the canonical one). */
static void orient_low(const float src[CLOW][CLOW], int transpose, int vflip, int hflip, float out[CLOW][CLOW]);
static uint32_t chroma_word(const float colour[2][CLOW][CLOW], const int unknown[2], int transpose, int vflip,
                            int hflip);

static int alternates(const float c[LOW][LOW], const float k[LOW][LOW], const float colour[2][CLOW][CLOW],
                      const int unknown[2], double ambiguous, uint64_t *hash, uint64_t *check, uint32_t *chroma) {
    float energy = 0;
    for (int i = 1; i < LOW * LOW; i++) energy = energy + (&c[0][0])[i] * (&c[0][0])[i];
    double margin = ambiguous * sqrt((double)energy / (LOW * LOW - 1));
    float h1 = c[0][1], v1 = c[1][0], gap = fabsf(fabsf(v1) - fabsf(h1)); /* in single precision, as numpy */
    float least = fabsf(h1) < fabsf(v1) ? fabsf(h1) : fabsf(v1);
    if ((least < gap ? least : gap) >= margin) return 0;
    int transposes[2] = {fabs(v1) > fabs(h1), fabs(v1) <= fabs(h1)}, n = 0;
    for (int t = 0; t < (gap < margin ? 2 : 1); t++) {
        double h = transposes[t] ? c[1][0] : c[0][1], v = transposes[t] ? c[0][1] : c[1][0];
        int hflips[2] = {h < 0, h >= 0}, vflips[2] = {v < 0, v >= 0};
        for (int a = 0; a < (fabs(h) < margin ? 2 : 1); a++)
            for (int b = 0; b < (fabs(v) < margin ? 2 : 1); b++) {
                float block[LOW][LOW];
                orient(c, transposes[t], vflips[b], hflips[a], block);
                hash[n] = median_bits(block);
                orient(k, transposes[t], vflips[b], hflips[a], block);
                check[n] = median_bits(block);
                chroma[n++] = chroma_word(colour, unknown, transposes[t], vflips[b], hflips[a]);
            }
    }
    return n;
}

/* ---- colour: the chroma word of a box (phash._colour_blocks, _dct_low, _chroma_words) ----------- */

/* The 4x4 chroma block oriented by orient's rule. */
static void orient_low(const float src[CLOW][CLOW], int transpose, int vflip, int hflip, float out[CLOW][CLOW]) {
    orient_n(&src[0][0], CLOW, transpose, vflip, hflip, &out[0][0]);
}

/* 16 bits of one oriented block: DC above neutral grey (the top bit), then each of the other 15
 * coefficients above their median (the 8th of them in order); UNKNOWN for a channel with no colour. */
static uint32_t chroma_half(const float block[CLOW][CLOW], int unknown) {
    if (unknown) return UNKNOWN;
    const float *flat = &block[0][0];
    float middle = 0;
    for (int i = 1; i < CLOW * CLOW; i++) { /* the 8th smallest of the 15: 7 below it, and it reaches 8 */
        int below = 0, upto = 0;
        for (int j = 1; j < CLOW * CLOW; j++) {
            below += flat[j] < flat[i];
            upto += flat[j] <= flat[i];
        }
        middle = below <= (CLOW * CLOW - 1) / 2 && upto > (CLOW * CLOW - 1) / 2 ? flat[i] : middle;
    }
    uint32_t bits = (uint32_t)(flat[0] > (float)(128 * CSIDE)) << (CLOW * CLOW - 1);
    for (int i = 1; i < CLOW * CLOW; i++) bits |= (uint32_t)(flat[i] > middle) << (CLOW * CLOW - 1 - i);
    return bits;
}

/* The word of a box's two colour blocks, oriented as its luma block: Cb high, Cr low. */
static uint32_t chroma_word(const float colour[2][CLOW][CLOW], const int unknown[2], int transpose, int vflip,
                            int hflip) {
    float turned[CLOW][CLOW];
    orient_low(colour[0], transpose, vflip, hflip, turned);
    uint32_t word = chroma_half(turned, unknown[0]) << 16;
    orient_low(colour[1], transpose, vflip, hflip, turned);
    return word | chroma_half(turned, unknown[1]);
}

/* One colour channel of one box: its 8x8 area average from the channel's integral image (half the
 * luma's resolution, `w` its width; the luma's cell rule), its 4x4 low DCT block in single precision
 * (every sum left to right, as phash._dct_low takes it), and whether the block's 15 AC coefficients
 * hold less than `flat` of spread (unknown). */
WIDE static void colour_block(const sum_t *table, int w, const int64_t box[4], const float *dct, double flat,
                         float out[CLOW][CLOW], int *unknown) {
    int64_t y0[CSIDE], y1[CSIDE], x0[CSIDE], x1[CSIDE];
    double thumb[CSIDE][CSIDE], rx[CSIDE];
    float x[CSIDE][CSIDE], half[CLOW][CSIDE];
    int64_t top = box[0] / 2, left = box[2] / 2; /* the box on the half-resolution planes (phash._colour_blocks) */
    int64_t bottom = (box[1] + 1) / 2 > top + 1 ? (box[1] + 1) / 2 : top + 1;
    int64_t right = (box[3] + 1) / 2 > left + 1 ? (box[3] + 1) / 2 : left + 1;
    edges(top, bottom, y0, y1, CSIDE);
    edges(left, right, x0, x1, CSIDE);
    int joined = 1; /* each cell starts where the last ended (8 samples or more): a 9 x 9 grid of sums, not 256 */
    for (int j = 0; j < CSIDE; j++) {
        rx[j] = 1.0 / (double)(x1[j] - x0[j]);
        joined &= j == CSIDE - 1 || (x1[j] == x0[j + 1] && y1[j] == y0[j + 1]);
    }
    if (joined) { /* exact integer sums: the same values in any order */
        sum_t grid[CSIDE + 1][CSIDE + 1];
        for (int i = 0; i <= CSIDE; i++) {
            const sum_t *row = table + (size_t)(i < CSIDE ? y0[i] : y1[CSIDE - 1]) * (w + 1);
            for (int j = 0; j < CSIDE; j++) grid[i][j] = row[x0[j]];
            grid[i][CSIDE] = row[x1[CSIDE - 1]];
        }
        for (int i = 0; i < CSIDE; i++) {
            double ry = 1.0 / (double)(y1[i] - y0[i]);
            for (int j = 0; j < CSIDE; j++)
                thumb[i][j] = (double)cell_sum(grid[i + 1][j + 1], grid[i][j + 1], grid[i + 1][j], grid[i][j]) * (ry * rx[j]);
        }
    } else {
        for (int i = 0; i < CSIDE; i++) {
            const sum_t *ra = table + (size_t)y0[i] * (w + 1), *rb = table + (size_t)y1[i] * (w + 1);
            double ry = 1.0 / (double)(y1[i] - y0[i]);
            for (int j = 0; j < CSIDE; j++)
                thumb[i][j] = (double)cell_sum(rb[x1[j]], ra[x1[j]], rb[x0[j]], ra[x0[j]]) * (ry * rx[j]);
        }
    }
    for (int i = 0; i < CSIDE; i++)
        for (int j = 0; j < CSIDE; j++) x[i][j] = (float)thumb[i][j];
    for (int u = 0; u < CLOW; u++) { /* a row of CSIDE = 8 sums: one vector */
        v8f acc = SPLAT8(dct[u * CSIDE]) * LOAD8(x[0]);
        for (int i = 1; i < CSIDE; i++) acc = acc + SPLAT8(dct[u * CSIDE + i]) * LOAD8(x[i]);
        memcpy(half[u], &acc, sizeof acc);
    }
    for (int u = 0; u < CLOW; u++)
        for (int v = 0; v < CLOW; v++) {
            float acc = half[u][0] * dct[v * CSIDE];
            for (int j = 1; j < CSIDE; j++) acc = acc + half[u][j] * dct[v * CSIDE + j];
            out[u][v] = acc;
        }
    float energy = 0; /* of the 15 AC coefficients, left to right: the low-passed thumbnail's spread */
    for (int i = 1; i < CLOW * CLOW; i++) energy = energy + (&out[0][0])[i] * (&out[0][0])[i];
    *unknown = sqrt((double)energy / (CSIDE * CSIDE)) < flat;
}

/* An integral image of a w x h plane ((h + 1) x (w + 1), first row and column zero), its values
 * clipped to lo..hi when hi > lo (sum_t: its words wrap); NULL when out of memory. */
static sum_t *integral(const uint8_t *src, int h, int w, int lo, int hi) {
    sum_t *table = malloc((size_t)(h + 1) * (w + 1) * sizeof *table);
    if (!table) return NULL;
    memset(table, 0, (size_t)(w + 1) * sizeof *table);
    for (int y = 0; y < h; y++) {
        sum_t run = 0;
        sum_t *row = table + (size_t)(y + 1) * (w + 1), *above = row - (w + 1);
        row[0] = 0;
        for (int x = 0; x < w; x++) {
            int v = src[(size_t)y * w + x];
            if (hi > lo) v = v < lo ? lo : v > hi ? hi : v;
            run += (sum_t)v;
            row[x + 1] = above[x + 1] + run;
        }
    }
    return table;
}

/* The area averages of a box's 32 x 32 cells from the integral image: each cell's exact integer sum
 * times the reciprocals of its height and width (phash._cells: a product, not a division, to share
 * its bits; the reciprocals are per row and column, not per cell). */
WIDE static void cells(const sum_t *table, int w, const int64_t *y0, const int64_t *y1, const int64_t *x0,
                       const int64_t *x1, double thumb[SIDE][SIDE]) {
    double rx[SIDE], ry[SIDE];
    int joined = 1; /* each cell starts where the last ended (a span of 32 pixels or more): 33 x 33 edges */
    for (int j = 0; j < SIDE; j++) {
        rx[j] = 1.0 / (double)(x1[j] - x0[j]);
        ry[j] = 1.0 / (double)(y1[j] - y0[j]);
        joined &= j == SIDE - 1 || (x1[j] == x0[j + 1] && y1[j] == y0[j + 1]);
    }
    if (joined) { /* the table at the grid's corners once, then each cell from four of them */
        sum_t grid[SIDE + 1][SIDE + 1];
        for (int i = 0; i <= SIDE; i++) {
            const sum_t *row = table + (size_t)(i < SIDE ? y0[i] : y1[SIDE - 1]) * (w + 1);
            for (int j = 0; j < SIDE; j++) grid[i][j] = row[x0[j]];
            grid[i][SIDE] = row[x1[SIDE - 1]];
        }
        for (int i = 0; i < SIDE; i++) /* exact integer sums: any order gives phash._cells' values */
            for (int j = 0; j < SIDE; j++)
                thumb[i][j] = (double)cell_sum(grid[i + 1][j + 1], grid[i][j + 1], grid[i + 1][j], grid[i][j]) * (ry[i] * rx[j]);
        return;
    }
    for (int i = 0; i < SIDE; i++) {
        const sum_t *ra = table + (size_t)y0[i] * (w + 1), *rb = table + (size_t)y1[i] * (w + 1);
        for (int j = 0; j < SIDE; j++)
            thumb[i][j] = (double)cell_sum(rb[x1[j]], ra[x1[j]], rb[x0[j]], ra[x0[j]]) * (ry[i] * rx[j]);
    }
}

/* Each value's distance from `mean`: folding the thumbnail about its mean, twice, gives the check's view. */
WIDE static void fold(double thumb[SIDE][SIDE], double mean) {
    for (int i = 0; i < SIDE; i++)
        for (int j = 0; j < SIDE; j++) thumb[i][j] = fabs(thumb[i][j] - mean);
}

/* The sum of a thumbnail's values (squares: of their deviations from `mean`) down each column, then
 * across the column sums: phash._total's order. */
static double total(double thumb[SIDE][SIDE], double mean, int squares) {
    double col[SIDE], out = 0;
    if (squares) { /* two loops each, not a test per value: the columns then go four to a vector */
        for (int j = 0; j < SIDE; j++) col[j] = (thumb[0][j] - mean) * (thumb[0][j] - mean);
        for (int i = 1; i < SIDE; i++)
            for (int j = 0; j < SIDE; j++) col[j] = col[j] + (thumb[i][j] - mean) * (thumb[i][j] - mean);
    } else {
        for (int j = 0; j < SIDE; j++) col[j] = thumb[0][j];
        for (int i = 1; i < SIDE; i++)
            for (int j = 0; j < SIDE; j++) col[j] = col[j] + thumb[i][j];
    }
    for (int j = 0; j < SIDE; j++) out = out + col[j];
    return out;
}

/* The share of a thumbnail's AC energy (`energy`) outside the 8x8 block the hash keeps, in double,
 * the block's 63 AC squares summed left to right (phash._detail's order): an image with none has
 * nothing beyond the thumbnail to tell a copy from a look-alike. */
static double detail_share(const float c[LOW][LOW], double energy) {
    double low = 0;
    for (int i = 1; i < LOW * LOW; i++) low = low + (double)(&c[0][0])[i] * (double)(&c[0][0])[i];
    return energy > 0 ? 1.0 - low / energy : 0.0;
}

/* phash.h's imp_print_image.  `chroma`: the Cb and Cr planes at half resolution (2 x ceil(h / 2) x
 * ceil(w / 2)) or NULL (grey: every word unknown). */
WIDE int imp_print_image(const uint8_t *src, const uint8_t *chroma, int h, int w, const float *dct, const float *cdct,
                    const print_params *p, uint64_t *hash, uint64_t *check, uint32_t *colour, uint64_t *alt_hash,
                    uint64_t *alt_check, uint32_t *alt_colour, int *alts, double *detail) {
    int box[4];
    *alts = 0;
    *detail = 0;
    imp_content_box(src, h, w, p->tol, p->peels, box);
    if (box[1] - box[0] < p->min_content || box[3] - box[2] < p->min_content) return 0;
    int64_t boxes[MAX_BOXES][4];
    int k = make_boxes(box, p, boxes), lo, hi;
    clip_levels(src, w, box, p->clip, &lo, &hi);
    /* a cell holds at most ceil(h / 32) + 1 rows and as many columns more (chroma: of an eighth of half) */
    if ((int64_t)(h / SIDE + 2) * (w / SIDE + 2) > CELL_LIMIT || (int64_t)(h / 16 + 2) * (w / 16 + 2) > CELL_LIMIT) return -1;
    sum_t *table = integral(src, h, w, lo, hi), *ctable[2] = {NULL, NULL}; /* exact sums: numpy's float ones */
    int failed = !table;
    int ch = (h + 1) / 2, cw = (w + 1) / 2; /* the chroma planes' size */
    for (int c = 0; chroma && c < 2 && !failed; c++) failed = !(ctable[c] = integral(chroma + (size_t)c * ch * cw, ch, cw, 0, 0));
    int flat = 0;
    for (int b = 0; b < k && !flat && !failed; b++) {
        int64_t y0[SIDE], y1[SIDE], x0[SIDE], x1[SIDE];
        double thumb[SIDE][SIDE];
        float coeffs[LOW][LOW], dev[LOW][LOW], turned[LOW][LOW], blocks[2][CLOW][CLOW] = {{{0}}};
        int unknown[2] = {1, 1};
        edges(boxes[b][0], boxes[b][1], y0, y1, SIDE);
        edges(boxes[b][2], boxes[b][3], x0, x1, SIDE);
        cells(table, w, y0, y1, x0, x1, thumb);
        double mean = total(thumb, 0, 0) / (SIDE * SIDE);
        double energy = 0; /* box 0: the thumbnail's AC energy (Parseval: the orthonormal DCT keeps it) */
        if (b == 0) {
            energy = total(thumb, mean, 1);
            flat = sqrt(energy / (SIDE * SIDE)) < p->flat_std;
            if (flat) break;
        }
        dct_block(thumb, dct, coeffs);
        if (b == 0) *detail = detail_share(coeffs, energy);
        fold(thumb, mean);
        fold(thumb, total(thumb, 0, 0) / (SIDE * SIDE));
        dct_block(thumb, dct, dev);
        for (int c = 0; chroma && c < 2; c++) colour_block(ctable[c], cw, boxes[b], cdct, p->chroma_flat, blocks[c], &unknown[c]);
        int transpose = fabs(coeffs[1][0]) > fabs(coeffs[0][1]);
        double h1 = transpose ? coeffs[1][0] : coeffs[0][1], v1 = transpose ? coeffs[0][1] : coeffs[1][0];
        orient(coeffs, transpose, v1 < 0, h1 < 0, turned);
        hash[b] = median_bits(turned);
        orient(dev, transpose, v1 < 0, h1 < 0, turned);
        check[b] = median_bits(turned);
        colour[b] = chroma_word(blocks, unknown, transpose, v1 < 0, h1 < 0);
        if (b == 0) *alts = alternates(coeffs, dev, blocks, unknown, p->ambiguous, alt_hash, alt_check, alt_colour);
    }
    free(table);
    free(ctable[0]);
    free(ctable[1]);
    if (failed) return -1;
    return flat ? 0 : k;
}

static PyObject *ints(const uint64_t *values, int n) {
    PyObject *out = PyTuple_New(n);
    for (int i = 0; out && i < n; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(values[i]);
        if (!v) {
            Py_CLEAR(out);
            break;
        }
        PyTuple_SET_ITEM(out, i, v);
    }
    return out;
}

static PyObject *words(const uint32_t *values, int n) {
    uint64_t wide[MAX_BOXES > MAX_ALTS ? MAX_BOXES : MAX_ALTS];
    for (int i = 0; i < n; i++) wide[i] = values[i];
    return ints(wide, n);
}

/* phash_print(luma, h, w, dct, (tol, peels, min_content, clip, flat_std, ambiguous, cut0, cut1, side_cut),
 *             chroma, chroma_dct, chroma_flat)
 * -> None (flat) or (hashes, checks, alternate hashes, alternate checks, chroma words, alternate chroma
 * words, detail): tuples of ints, box 0 first, then box 0's detail share (a float).  chroma: the Cb and
 * Cr planes at half resolution (2 x ceil(h/2) x ceil(w/2) bytes) or None (grey). */
PyObject *imp_py_phash_print(PyObject *self, PyObject *args) {
    Py_buffer view, vdct, vchroma, vcdct;
    PyObject *o_chroma;
    int h, w, k = 0, alts = 0;
    double detail = 0;
    print_params p;
    uint64_t hash[MAX_BOXES], check[MAX_BOXES], alt_hash[MAX_ALTS], alt_check[MAX_ALTS];
    uint32_t colour[MAX_BOXES], alt_colour[MAX_ALTS];
    (void)self;
    if (!PyArg_ParseTuple(args, "y*iiy*(iiiddd(dd)d)Oy*d:phash_print", &view, &h, &w, &vdct, &p.tol, &p.peels,
                          &p.min_content, &p.clip, &p.flat_std, &p.ambiguous, &p.cut[0], &p.cut[1], &p.side_cut,
                          &o_chroma, &vcdct, &p.chroma_flat))
        return NULL;
    int grey = o_chroma == Py_None;
    if (!grey && PyObject_GetBuffer(o_chroma, &vchroma, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&view);
        PyBuffer_Release(&vdct);
        PyBuffer_Release(&vcdct);
        return NULL;
    }
    int bad = h < 1 || w < 1 || view.len < (Py_ssize_t)h * w || vdct.len != LOW * SIDE * (Py_ssize_t)sizeof(float) ||
              vcdct.len != CLOW * CSIDE * (Py_ssize_t)sizeof(float) ||
              (!grey && vchroma.len < 2 * (Py_ssize_t)((h + 1) / 2) * ((w + 1) / 2));
    if (!bad) {
        Py_BEGIN_ALLOW_THREADS
        k = imp_print_image(view.buf, grey ? NULL : vchroma.buf, h, w, vdct.buf, vcdct.buf, &p, hash, check, colour,
                            alt_hash, alt_check, alt_colour, &alts, &detail);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&view);
    PyBuffer_Release(&vdct);
    PyBuffer_Release(&vcdct);
    if (!grey) PyBuffer_Release(&vchroma);
    if (bad) return PyErr_Format(PyExc_ValueError, "phash_print: bad luma or chroma size or DCT matrix");
    if (k < 0) return PyErr_NoMemory();
    if (k == 0) Py_RETURN_NONE;
    return Py_BuildValue("(NNNNNNd)", ints(hash, k), ints(check, k), ints(alt_hash, alts), ints(alt_check, alts),
                         words(colour, k), words(alt_colour, alts), detail);
}
