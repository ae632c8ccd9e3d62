/* CPython face of reader_crop.c, registered by module.c. */
#ifndef IMGPREP_READER_PY_H
#define IMGPREP_READER_PY_H

#include <Python.h>

extern const char imr_jpeg_sizes_doc[];
extern const char imr_decode_crops_doc[];
PyObject *imr_py_jpeg_sizes(PyObject *self, PyObject *arg);
PyObject *imr_py_decode_crops(PyObject *self, PyObject *args);

#endif
