/* imgprep._native.jpeg_sizes / decode_crops: the reader's batch calls (see reader_crop.h).
 *
 * A batch goes in as a list of buffers (bytes, memoryview slices of records: no copy) and comes
 * out in a caller's uint8 array; the GIL is released once for the whole batch.  Failures do not
 * raise: they come back as (position, kind, message) so that one damaged record does not cost
 * the batch, and the caller names the record.
 */
#define PY_SSIZE_T_CLEAN
#include "reader_py.h"

#include <stdlib.h>
#include <string.h>

#include "reader_crop.h"

const char imr_jpeg_sizes_doc[] =
    "jpeg_sizes(buffers) -> list of (width, height) or None\n\n"
    "JPEG header sizes (None where libjpeg rejects the header); no pixels are decoded.";

const char imr_decode_crops_doc[] =
    "decode_crops(buffers, boxes, flips, out, chw) -> list of (position, kind, message)\n\n"
    "Decode buffers[i]'s crop boxes[i] (float64 left, top, right, bottom) into out[i] (uint8,\n"
    "C-contiguous (n, H, W, 3), or (n, 3, H, W) when chw), mirrored where flips[i] (uint8);\n"
    "kind is 'error' (corrupt), 'unsupported' or 'warning' (left to the caller's Pillow path).";

/* Buffers of a list, taken with the GIL held; released by drop(). */
static Py_buffer *take(PyObject *list, Py_ssize_t *n) {
    if (!PyList_Check(list)) {
        PyErr_SetString(PyExc_TypeError, "buffers must be a list");
        return NULL;
    }
    *n = PyList_GET_SIZE(list);
    Py_buffer *views = PyMem_Calloc((size_t)(*n ? *n : 1), sizeof(Py_buffer));
    if (!views) return (Py_buffer *)PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < *n; i++) {
        if (PyObject_GetBuffer(PyList_GET_ITEM(list, i), &views[i], PyBUF_SIMPLE) < 0) {
            while (i-- > 0) PyBuffer_Release(&views[i]);
            PyMem_Free(views);
            return NULL;
        }
    }
    return views;
}

static void drop(Py_buffer *views, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) PyBuffer_Release(&views[i]);
    PyMem_Free(views);
}

PyObject *imr_py_jpeg_sizes(PyObject *self, PyObject *arg) {
    Py_ssize_t n;
    (void)self;
    Py_buffer *views = take(arg, &n);
    if (!views) return NULL;
    int *wh = PyMem_Calloc((size_t)(n ? n : 1) * 2, sizeof(int));
    char *ok = PyMem_Calloc((size_t)(n ? n : 1), 1);
    PyObject *result = NULL;
    if (!wh || !ok) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        char err[IMR_ERRLEN];
        ok[i] = imr_jpeg_size(views[i].buf, (size_t)views[i].len, &wh[2 * i], &wh[2 * i + 1], err) == IMR_OK;
    }
    Py_END_ALLOW_THREADS
    result = PyList_New(n);
    for (Py_ssize_t i = 0; result && i < n; i++) {
        PyObject *item = ok[i] ? Py_BuildValue("(ii)", wh[2 * i], wh[2 * i + 1]) : Py_NewRef(Py_None);
        if (!item) Py_CLEAR(result);
        else PyList_SET_ITEM(result, i, item);
    }
done:
    PyMem_Free(wh);
    PyMem_Free(ok);
    drop(views, n);
    return result;
}

static const char *kind_of(int rc) {
    switch (rc) {
    case IMR_EUNSUPPORTED: return "unsupported";
    case IMR_EWARN: return "warning";
    default: return "error";
    }
}

PyObject *imr_py_decode_crops(PyObject *self, PyObject *args) {
    PyObject *list, *boxes_obj, *flips_obj, *out_obj;
    int chw;
    Py_buffer boxes, flips, out;
    Py_ssize_t n;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOp:decode_crops", &list, &boxes_obj, &flips_obj, &out_obj, &chw)) return NULL;
    Py_buffer *views = take(list, &n);
    if (!views) return NULL;
    if (PyObject_GetBuffer(boxes_obj, &boxes, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        drop(views, n);
        return NULL;
    }
    if (PyObject_GetBuffer(flips_obj, &flips, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&boxes);
        drop(views, n);
        return NULL;
    }
    if (PyObject_GetBuffer(out_obj, &out, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&flips);
        PyBuffer_Release(&boxes);
        drop(views, n);
        return NULL;
    }
    PyObject *result = NULL;
    int *rcs = NULL;
    char *errs = NULL;
    int h = 0, w = 0;
    if (out.ndim == 4 && out.itemsize == 1 && out.shape[0] == n) {
        h = (int)(chw ? out.shape[2] : out.shape[1]);
        w = (int)(chw ? out.shape[3] : out.shape[2]);
    }
    if (!h || !w || (chw ? out.shape[1] : out.shape[3]) != 3 || boxes.len != (Py_ssize_t)(n * 4 * sizeof(double)) ||
        !boxes.format || strcmp(boxes.format, "d") != 0 || flips.len != n) {
        PyErr_SetString(PyExc_ValueError, "decode_crops: out must be uint8 (n, H, W, 3) or (n, 3, H, W), boxes "
                                          "float64 (n, 4), flips uint8 (n,)");
        goto done;
    }
    rcs = PyMem_Calloc((size_t)(n ? n : 1), sizeof(int));
    errs = PyMem_Calloc((size_t)(n ? n : 1), IMR_ERRLEN);
    if (!rcs || !errs) {
        PyErr_NoMemory();
        goto done;
    }
    const double *bx = boxes.buf;
    const unsigned char *fl = flips.buf;
    unsigned char *dst = out.buf;
    size_t each = (size_t)h * w * 3;
    Py_BEGIN_ALLOW_THREADS
    imr_scratch scratch = {NULL, 0};
    for (Py_ssize_t i = 0; i < n; i++)
        rcs[i] = imr_decode_crop(views[i].buf, (size_t)views[i].len, bx + 4 * i, w, h, fl[i], chw, dst + each * i,
                                 &scratch, errs + IMR_ERRLEN * i);
    imr_scratch_free(&scratch);
    Py_END_ALLOW_THREADS
    result = PyList_New(0);
    for (Py_ssize_t i = 0; result && i < n; i++) {
        if (rcs[i] == IMR_OK) continue;
        if (rcs[i] == IMR_ENOMEM) {
            Py_CLEAR(result);
            PyErr_NoMemory();
            break;
        }
        if (rcs[i] == IMR_EARG) {
            Py_CLEAR(result);
            PyErr_SetString(PyExc_ValueError, errs + IMR_ERRLEN * i);
            break;
        }
        PyObject *item = Py_BuildValue("(nss)", i, kind_of(rcs[i]), errs + IMR_ERRLEN * i);
        if (!item || PyList_Append(result, item) < 0) Py_CLEAR(result);
        Py_XDECREF(item);
    }
done:
    PyMem_Free(rcs);
    PyMem_Free(errs);
    PyBuffer_Release(&out);
    PyBuffer_Release(&flips);
    PyBuffer_Release(&boxes);
    drop(views, n);
    return result;
}
