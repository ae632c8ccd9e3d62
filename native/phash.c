/* The heavy half of imgprep's duplicate fingerprint (imgprep/imaging/phash.py), GIL released:
 * the content box inside uniform bars, and the 8x8 DCT blocks of area averages of boxes.
 *
 * Both follow the numpy code step for step (the same integer cell edges, the same sums of
 * exact integers), so the two paths give the same boxes and, but for the last bits of the DCT's
 * floating-point sums, the same coefficients; the policy (windows, orientation, median bits)
 * stays in Python.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SIDE 32
#define LOW 8

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

static void content_box(const uint8_t *img, int h, int w, int tol, int peels, int box[4]) {
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

static void edges(int64_t lo, int64_t hi, int64_t *start, int64_t *stop) {
    int64_t span = hi - lo;
    for (int i = 0; i < SIDE; i++) {
        start[i] = lo + (i * span) / SIDE;
        int64_t s = lo + ((i + 1) * span) / SIDE;
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
    content_box(view.buf, h, w, tol, peels, box);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return Py_BuildValue("(iiii)", box[0], box[1], box[2], box[3]);
}

/* The 8x8 lowest frequencies of a thumbnail's 2-D DCT-II: (D @ thumb) @ D.T. */
static void block_dct(double thumb[SIDE][SIDE], const double *dct, double half[LOW][SIDE], double *out) {
    for (int u = 0; u < LOW; u++) { /* rows of the thumbnail in order: the inner loop runs along memory */
        for (int j = 0; j < SIDE; j++) half[u][j] = 0;
        for (int i = 0; i < SIDE; i++) {
            double d = dct[u * SIDE + i];
            for (int j = 0; j < SIDE; j++) half[u][j] += d * thumb[i][j];
        }
    }
    for (int u = 0; u < LOW; u++)
        for (int v = 0; v < LOW; v++) {
            double acc = 0;
            for (int j = 0; j < SIDE; j++) acc += half[u][j] * dct[v * SIDE + j];
            out[u * LOW + v] = acc;
        }
}

/* phash_blocks(luma, h, w, boxes, dct[, check]) -> (k x 8 x 8 float64 bytes, std of the first box's thumbnail)
 * check: k more blocks follow, the DCT of each thumbnail's absolute deviation from its mean (the
 * confirming hash's input: a second view of the same pixels whose bits are not the first's). */
PyObject *imp_py_phash_blocks(PyObject *self, PyObject *args) {
    Py_buffer view, vbox, vdct;
    int h, w, check = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*iiy*y*|p:phash_blocks", &view, &h, &w, &vbox, &vdct, &check)) return NULL;
    Py_ssize_t k = vbox.len / (4 * (Py_ssize_t)sizeof(int64_t));
    const int64_t *boxes = vbox.buf;
    int bad = h < 1 || w < 1 || view.len < (Py_ssize_t)h * w || vdct.len != LOW * SIDE * (Py_ssize_t)sizeof(double);
    for (Py_ssize_t b = 0; !bad && b < k; b++)
        bad = boxes[4 * b] < 0 || boxes[4 * b + 1] > h || boxes[4 * b] >= boxes[4 * b + 1] || boxes[4 * b + 2] < 0 ||
              boxes[4 * b + 3] > w || boxes[4 * b + 2] >= boxes[4 * b + 3];
    PyObject *out = bad ? NULL : PyBytes_FromStringAndSize(NULL, (check ? 2 : 1) * k * LOW * LOW * (Py_ssize_t)sizeof(double));
    double *table = bad || !out ? NULL : malloc((size_t)(h + 1) * (w + 1) * sizeof *table);
    double spread = 0;
    if (table) {
        const uint8_t *img = view.buf;
        const double *dct = vdct.buf;
        double *coeffs = (double *)PyBytes_AS_STRING(out);
        Py_BEGIN_ALLOW_THREADS
        memset(table, 0, (size_t)(w + 1) * sizeof *table);
        for (int y = 0; y < h; y++) {
            double run = 0;
            double *row = table + (size_t)(y + 1) * (w + 1), *above = row - (w + 1);
            row[0] = 0;
            for (int x = 0; x < w; x++) {
                run += img[(size_t)y * w + x];
                row[x + 1] = above[x + 1] + run;
            }
        }
        for (Py_ssize_t b = 0; b < k; b++) {
            int64_t y0[SIDE], y1[SIDE], x0[SIDE], x1[SIDE];
            double thumb[SIDE][SIDE], half[LOW][SIDE];
            edges(boxes[4 * b], boxes[4 * b + 1], y0, y1);
            edges(boxes[4 * b + 2], boxes[4 * b + 3], x0, x1);
            for (int i = 0; i < SIDE; i++)
                for (int j = 0; j < SIDE; j++) {
                    const double *ra = table + (size_t)y0[i] * (w + 1), *rb = table + (size_t)y1[i] * (w + 1);
                    double sum = rb[x1[j]] - ra[x1[j]] - rb[x0[j]] + ra[x0[j]];
                    thumb[i][j] = sum / (double)((y1[i] - y0[i]) * (x1[j] - x0[j]));
                }
            if (b == 0) {
                double mean = 0, sq = 0;
                for (int i = 0; i < SIDE; i++)
                    for (int j = 0; j < SIDE; j++) mean += thumb[i][j];
                mean /= SIDE * SIDE;
                for (int i = 0; i < SIDE; i++)
                    for (int j = 0; j < SIDE; j++) sq += (thumb[i][j] - mean) * (thumb[i][j] - mean);
                spread = sqrt(sq / (SIDE * SIDE));
            }
            block_dct(thumb, dct, half, coeffs + b * LOW * LOW);
            if (check) {
                double mean = 0;
                for (int i = 0; i < SIDE; i++)
                    for (int j = 0; j < SIDE; j++) mean += thumb[i][j];
                mean /= SIDE * SIDE;
                for (int i = 0; i < SIDE; i++)
                    for (int j = 0; j < SIDE; j++) thumb[i][j] = fabs(thumb[i][j] - mean);
                block_dct(thumb, dct, half, coeffs + (k + b) * LOW * LOW);
            }
        }
        Py_END_ALLOW_THREADS
        free(table);
    } else if (!bad && out) {
        Py_CLEAR(out);
        PyErr_NoMemory();
    }
    PyBuffer_Release(&view);
    PyBuffer_Release(&vbox);
    PyBuffer_Release(&vdct);
    if (bad) return PyErr_Format(PyExc_ValueError, "phash_blocks: bad luma size, boxes or DCT matrix");
    if (!out) return NULL;
    return Py_BuildValue("(Nd)", out, spread);
}
