/* CPython face of lstscan.c (the strict .lst line scanner), registered by module.c. */
#ifndef IMGPREP_LSTSCAN_H
#define IMGPREP_LSTSCAN_H

#include <Python.h>

extern const char imp_lst_scan_doc[];
PyObject *imp_py_lst_scan(PyObject *self, PyObject *args);

extern const char imp_ids_mark_doc[];
PyObject *imp_py_ids_mark(PyObject *self, PyObject *args);

#endif
