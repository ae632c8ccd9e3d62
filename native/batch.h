/* imgprep._native.pack_batch (batch.c): a chunk of packer records made in C, GIL released. */
#ifndef IMGPREP_NATIVE_BATCH_H
#define IMGPREP_NATIVE_BATCH_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

extern const char imp_pack_batch_doc[];
PyObject *imp_py_pack_batch(PyObject *self, PyObject *args);

#endif
