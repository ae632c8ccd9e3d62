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

#include "core.h"

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
    PyObject *result;
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
    if (rc != IMP_OK) return raise_rc(rc, err);
    result = PyBytes_FromStringAndSize((const char *)out, (Py_ssize_t)out_len);
    tjFree(out);
    return result;
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
    PyObject *result;
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
    if (rc != IMP_OK) return raise_rc(rc, err);
    result = PyBytes_FromStringAndSize((const char *)out, (Py_ssize_t)out_len);
    tjFree(out);
    return result;
}

static PyMethodDef methods[] = {
    {"encode_pixels", py_encode_pixels, METH_VARARGS, encode_pixels_doc},
    {"probe", py_probe, METH_O, probe_doc},
    {"transform", py_transform, METH_VARARGS, transform_doc},
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
        PyModule_AddIntConstant(m, "TJCS_GRAY", TJCS_GRAY) < 0) {
        Py_XDECREF(Error);
        Py_XDECREF(Unsupported);
        Py_XDECREF(DataWarning);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
