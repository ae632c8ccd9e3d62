/* imgprep._native: the CPython face of core.c.
 *
 * Input is taken through the buffer protocol (bytes, bytearray, memoryview, mmap) without a
 * copy, and the GIL is released for all decoding, resampling and encoding, so a thread pool
 * uses every core.  Python-level policy (plans, fallbacks, error messages) lives in
 * imgprep/imaging/native.py.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <turbojpeg.h>
#if defined(__GLIBC__) /* from <features.h>, which Python.h has pulled in */
#include <malloc.h>
#endif

#include "core.h"
#include "batch.h"
#include "reader_py.h"
#include "lstscan.h"
#include "recordio.h"

#if defined(__has_include)
#if __has_include(<jconfig.h>)
#include <jconfig.h>
#endif
#endif
#ifndef LIBJPEG_TURBO_VERSION
#define LIBJPEG_TURBO_VERSION unknown
#endif
#define STR2(x) #x
#define STR(x) STR2(x)

static PyObject *Error, *Unsupported, *DataWarning;

static PyObject *raise_rc(int rc, const char *msg) {
    switch (rc) {
    case IMP_ENOMEM: return PyErr_NoMemory();
    case IMP_EARG: PyErr_SetString(PyExc_ValueError, msg); break;
    case IMP_EUNSUPPORTED: PyErr_SetString(Unsupported, msg); break;
    case IMP_EWARN: PyErr_SetString(DataWarning, msg); break;
    default: PyErr_SetString(Error, msg); break;
    }
    return NULL;
}

/* A core call's result as bytes (or its error as an exception); frees the turbojpeg buffer. */
static PyObject *take_output(int rc, const char *err, unsigned char *out, unsigned long out_len) {
    PyObject *result;
    if (rc != IMP_OK) return raise_rc(rc, err);
    result = PyBytes_FromStringAndSize((const char *)out, (Py_ssize_t)out_len);
    tjFree(out);
    return result;
}

PyDoc_STRVAR(probe_doc,
             "probe(data) -> (width, height, subsamp, colorspace, orientation)\n\n"
             "Read a JPEG header (TJSAMP_*/TJCS_* codes, EXIF orientation 1..8); no pixels are decoded.");

static PyObject *py_probe(PyObject *self, PyObject *arg) {
    Py_buffer view;
    imp_info info;
    char err[IMP_ERRLEN] = "";
    int rc;
    (void)self;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = imp_probe(view.buf, (size_t)view.len, &info, err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (rc != IMP_OK) return raise_rc(rc, err);
    return Py_BuildValue("(iiiii)", info.width, info.height, info.subsamp, info.colorspace, info.orientation);
}

PyDoc_STRVAR(transform_doc,
             "transform(data, scale, orientation, box, size, canvas, offset, gray, quality, pad) -> bytes\n\n"
             "Decode at 1/scale to YCbCr planes, orient, resample the float box (scaled, oriented luma\n"
             "pixels) to size, place it at offset on canvas, encode a 4:2:0 (or grayscale) JPEG.");

static PyObject *py_transform(PyObject *self, PyObject *args) {
    Py_buffer view;
    imp_job job;
    char err[IMP_ERRLEN] = "";
    unsigned char *out = NULL;
    unsigned long out_len = 0;
    int rc;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*ii(dddd)(ii)(ii)(ii)pii:transform", &view, &job.scale, &job.orientation,
                          &job.box[0], &job.box[1], &job.box[2], &job.box[3], &job.size[0], &job.size[1],
                          &job.canvas[0], &job.canvas[1], &job.offset[0], &job.offset[1], &job.gray,
                          &job.quality, &job.pad))
        return NULL;
    if (job.pad < 0 || job.pad > 255) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "pad must be 0..255");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = imp_transform(view.buf, (size_t)view.len, &job, &out, &out_len, err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return take_output(rc, err, out, out_len);
}

PyDoc_STRVAR(encode_pixels_doc,
             "encode_pixels(pixels, width, height, channels, quality) -> bytes\n\n"
             "Encode C-contiguous 8-bit pixels (channels 1: grayscale, 3: RGB as 4:2:0) as a JPEG.");

static PyObject *py_encode_pixels(PyObject *self, PyObject *args) {
    Py_buffer view;
    int width, height, channels, quality, rc;
    char err[IMP_ERRLEN] = "";
    unsigned char *out = NULL;
    unsigned long out_len = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*iiii:encode_pixels", &view, &width, &height, &channels, &quality)) return NULL;
    if (width < 1 || height < 1 || (channels != 1 && channels != 3) ||
        view.len != (Py_ssize_t)width * height * channels) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "pixel buffer size does not match width x height x channels");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = imp_encode_pixels(view.buf, width, height, channels, quality, &out, &out_len, err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return take_output(rc, err, out, out_len);
}

/* dmlc RecordIO framing of header + body in one pass (see imgprep/formats/recordio.py for the
 * rules, and the pure-Python reference it must match byte for byte).  On megabyte payloads
 * (--pass-through) the scan for the magic word is most of the cost of framing (recordio.h). */

static size_t next_aligned_magic(const unsigned char *d, size_t n, size_t from) {
    for (size_t i = from; i + 4 <= n; i += 4) {
        uint32_t w;
        memcpy(&w, d + i, 4);
        if (w == RIO_MAGIC) return i;
    }
    return n;
}

PyDoc_STRVAR(frame_doc, "frame(head, body) -> bytes\n\nRecordIO framing of head + body, as recordio.frame does.");

/* head + body seen as one payload without concatenating them (a megabyte copy is mostly page
 * faults); head is 24 + 4N bytes in practice, so body words stay aligned.  Other head sizes take
 * the copy. */
typedef struct {
    const unsigned char *a, *b;
    size_t na, nb;
} vbuf;

static void vcopy(const vbuf *v, unsigned char *dst, size_t from, size_t len) {
    if (from < v->na) {
        size_t k = v->na - from < len ? v->na - from : len;
        memcpy(dst, v->a + from, k);
        dst += k;
        from += k;
        len -= k;
    }
    if (len) memcpy(dst, v->b + (from - v->na), len);
}

static size_t vnext(const vbuf *v, size_t from) {
    if (from < v->na) {
        size_t at = next_aligned_magic(v->a, v->na, from);
        if (at < v->na) return at;
        from = v->na;
    }
    return v->na + next_aligned_magic(v->b, v->nb, from - v->na);
}

static PyObject *py_frame(PyObject *self, PyObject *args) {
    Py_buffer head, body;
    PyObject *result = NULL;
    unsigned char *joined = NULL;
    vbuf v;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*:frame", &head, &body)) return NULL;
    size_t n = (size_t)head.len + (size_t)body.len;
    if (n > RIO_MAX) {
        PyErr_Format(PyExc_ValueError, "record of %zu bytes exceeds RecordIO's limit of %u bytes", n, RIO_MAX);
        goto done;
    }
    if (head.len % 4 == 0) {
        v = (vbuf){head.buf, body.buf, (size_t)head.len, (size_t)body.len};
    } else {
        joined = malloc(n ? n : 1);
        if (!joined) {
            PyErr_NoMemory();
            goto done;
        }
        memcpy(joined, head.buf, (size_t)head.len);
        memcpy(joined + head.len, body.buf, (size_t)body.len);
        v = (vbuf){joined, NULL, n, 0};
    }
    size_t count = count_aligned_magic(v.a, v.na) + (v.nb ? count_aligned_magic(v.b, v.nb) : 0);
    size_t pad = (4 - n % 4) % 4;
    result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(8 * (count + 1) + (n - 4 * count) + pad));
    if (!result) goto done;
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(result);
    Py_BEGIN_ALLOW_THREADS
    size_t start = 0;
    for (size_t at = count ? vnext(&v, 0) : n; at < n; at = vnext(&v, start)) {
        put32(o, RIO_MAGIC);
        put32(o + 4, ((start == 0 ? 1u : 2u) << 29) | (uint32_t)(at - start));
        vcopy(&v, o + 8, start, at - start);
        o += 8 + (at - start);
        start = at + 4;
    }
    put32(o, RIO_MAGIC);
    put32(o + 4, ((start ? 3u : 0u) << 29) | (uint32_t)(n - start));
    vcopy(&v, o + 8, start, n - start);
    memset(o + 8 + (n - start), 0, pad);
    Py_END_ALLOW_THREADS
done:
    free(joined);
    PyBuffer_Release(&head);
    PyBuffer_Release(&body);
    return result;
}

PyDoc_STRVAR(keep_heap_doc,
             "keep_heap(pad_bytes) -> bool\n\n"
             "Have glibc's malloc keep pad_bytes of free heap per arena instead of returning it to the\n"
             "system (M_TOP_PAD), and serve blocks under 32 MiB from the heap (M_MMAP_THRESHOLD).\n"
             "Each transform allocates and frees a few hundred KB (planes, libjpeg's pools); without\n"
             "this the heap shrinks and regrows every image: ~25 page faults (~50 us) per COCO-sized\n"
             "photo.  Process-wide, so only the imgprep CLI calls it.  False where the C library has\n"
             "no such settings.");

static PyObject *py_keep_heap(PyObject *self, PyObject *arg) {
    long pad = PyLong_AsLong(arg);
    (void)self;
    if (pad == -1 && PyErr_Occurred()) return NULL;
    if (pad < 0 || pad > (1L << 30)) {
        PyErr_SetString(PyExc_ValueError, "pad must be 0..1 GiB");
        return NULL;
    }
#if defined(__GLIBC__)
    /* Setting any of these stops glibc from raising the mmap threshold by itself (up to 32 MiB)
     * as big blocks are freed, so set that ceiling too: else every buffer over 128 KiB (a
     * phone photo's bytes) would be mmapped and faulted in afresh. */
    return PyBool_FromLong(mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TOP_PAD, (int)pad) == 1);
#else
    Py_RETURN_FALSE;
#endif
}

PyDoc_STRVAR(decode_luma_doc,
             "decode_luma(data, min_side, chroma=False) -> (width, height, components, sw, sh, luma[, chroma])\n\n"
             "Decode a whole JPEG (warnings are errors) at the largest DCT reduction keeping both sides\n"
             ">= min_side; return its stored size, component count and the sw x sh luma plane as bytes;\n"
             "with chroma, also its Cb and Cr planes at ceil(sw/2) x ceil(sh/2) (bytes, Cb first; None for a grey JPEG).");

static PyObject *py_decode_luma(PyObject *self, PyObject *args) {
    Py_buffer view;
    imp_luma info;
    int min_side, rc, want = 0;
    char err[IMP_ERRLEN] = "";
    unsigned char *luma = NULL, *chroma = NULL;
    PyObject *pixels, *colour = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*i|p:decode_luma", &view, &min_side, &want)) return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = imp_decode_ycc(view.buf, (size_t)view.len, min_side, &info, &luma, want ? &chroma : NULL, err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (rc != IMP_OK) return raise_rc(rc, err);
    pixels = PyBytes_FromStringAndSize((const char *)luma, (Py_ssize_t)info.sw * info.sh);
    free(luma);
    if (want && pixels) {
        Py_ssize_t half = (Py_ssize_t)((info.sw + 1) / 2) * ((info.sh + 1) / 2);
        colour = chroma ? PyBytes_FromStringAndSize((const char *)chroma, 2 * half) : (Py_INCREF(Py_None), Py_None);
        if (!colour) Py_CLEAR(pixels);
    }
    free(chroma);
    if (!pixels) return NULL;
    if (want) return Py_BuildValue("(iiiiiNN)", info.width, info.height, info.components, info.sw, info.sh, pixels, colour);
    return Py_BuildValue("(iiiiiN)", info.width, info.height, info.components, info.sw, info.sh, pixels);
}

/* dupsearch.c: near-duplicate grouping (multi-index hashing + union-find) */
PyObject *imp_py_dup_union(PyObject *self, PyObject *args);
PyObject *imp_py_dup_lead(PyObject *self, PyObject *args);
/* phash.c: the duplicate fingerprint's content box, and the whole fingerprint */
PyObject *imp_py_phash_box(PyObject *self, PyObject *args);
PyObject *imp_py_phash_print(PyObject *self, PyObject *args);
/* phash_batch.c: the fingerprint rows of a pack worker's records */
extern const char imp_phash_records_doc[];
size_t imp_phash_row_size(void);
PyObject *imp_py_phash_records(PyObject *self, PyObject *args);

static PyMethodDef methods[] = {
    {"decode_luma", py_decode_luma, METH_VARARGS, decode_luma_doc},
    {"frame", py_frame, METH_VARARGS, frame_doc},
    {"keep_heap", py_keep_heap, METH_O, keep_heap_doc},
    {"encode_pixels", py_encode_pixels, METH_VARARGS, encode_pixels_doc},
    {"probe", py_probe, METH_O, probe_doc},
    {"transform", py_transform, METH_VARARGS, transform_doc},
    /* the packer's and verify's batches (batch.c) */
    {"pack_batch", imp_py_pack_batch, METH_VARARGS, imp_pack_batch_doc},
    {"index_lines", imp_py_index_lines, METH_VARARGS, imp_index_lines_doc},
    {"decode_batch", imp_py_decode_batch, METH_VARARGS, imp_decode_batch_doc},
    /* the training reader (reader_py.c) */
    {"jpeg_sizes", imr_py_jpeg_sizes, METH_O, imr_jpeg_sizes_doc},
    {"decode_crops", imr_py_decode_crops, METH_VARARGS, imr_decode_crops_doc},
    /* duplicates (dupsearch.c, phash.c) */
    {"dup_union", imp_py_dup_union, METH_VARARGS, NULL},
    {"dup_lead", imp_py_dup_lead, METH_VARARGS, NULL},
    {"phash_box", imp_py_phash_box, METH_VARARGS, NULL},
    {"phash_print", imp_py_phash_print, METH_VARARGS, NULL},
    {"phash_records", imp_py_phash_records, METH_VARARGS, imp_phash_records_doc},
    /* .lst text (lstscan.c) */
    {"lst_scan", imp_py_lst_scan, METH_VARARGS, imp_lst_scan_doc},
    {"ids_mark", imp_py_ids_mark, METH_VARARGS, imp_ids_mark_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "imgprep._native",
    "JPEG fast path on libjpeg-turbo's TurboJPEG API (see imgprep.imaging.native).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void) {
    PyObject *m = PyModule_Create(&moduledef);
    if (!m) return NULL;
    Error = PyErr_NewExceptionWithDoc("imgprep._native.Error", "Corrupt JPEG data.", PyExc_ValueError, NULL);
    Unsupported = PyErr_NewExceptionWithDoc("imgprep._native.Unsupported",
                                            "A valid image the native path does not handle.", Error, NULL);
    DataWarning = PyErr_NewExceptionWithDoc("imgprep._native.DataWarning",
                                            "libjpeg warned (truncated or damaged data).", Error, NULL);
    if (!Error || !Unsupported || !DataWarning || PyModule_AddObjectRef(m, "Error", Error) < 0 ||
        PyModule_AddObjectRef(m, "Unsupported", Unsupported) < 0 ||
        PyModule_AddObjectRef(m, "DataWarning", DataWarning) < 0 ||
        PyModule_AddStringConstant(m, "LIBJPEG_TURBO_VERSION", STR(LIBJPEG_TURBO_VERSION)) < 0 ||
        PyModule_AddIntConstant(m, "TJSAMP_GRAY", TJSAMP_GRAY) < 0 ||
        PyModule_AddIntConstant(m, "TJCS_YCbCr", TJCS_YCbCr) < 0 ||
        PyModule_AddIntConstant(m, "TJCS_GRAY", TJCS_GRAY) < 0 ||
        PyModule_AddIntConstant(m, "PHASH_ROW_SIZE", (long)imp_phash_row_size()) < 0) {
        Py_XDECREF(Error);
        Py_XDECREF(Unsupported);
        Py_XDECREF(DataWarning);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
