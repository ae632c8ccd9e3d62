/* imgprep._native.pack_batch and decode_batch (batch.c): whole batches in C, GIL released. */
#ifndef IMGPREP_NATIVE_BATCH_H
#define IMGPREP_NATIVE_BATCH_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

extern const char imp_pack_batch_doc[];
PyObject *imp_py_pack_batch(PyObject *self, PyObject *args);

/* imgprep._native.decode_batch: verify's full decodes, a list of images per call, GIL released. */
extern const char imp_decode_batch_doc[];
PyObject *imp_py_decode_batch(PyObject *self, PyObject *args);

/* imgprep._native.index_lines: the .idx lines of a run of records (the writer's one per-record job). */
extern const char imp_index_lines_doc[];
PyObject *imp_py_index_lines(PyObject *self, PyObject *args);

#endif
