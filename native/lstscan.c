/* imgprep._native.lst_scan: the common, unambiguous subset of .lst lines, parsed in C.
 *
 * imgprep/splits/stream.py hands over a block of list text; this scans whole lines from an
 * offset with the GIL released and stops at the first line it does not accept *without doubt*,
 * which Python then parses with imgprep.formats.lst.parse_line (returning the item after all, or
 * raising the exact error with file and line).  So a line taken here must be one parse_line
 * would take, giving the same values; everything else is simply not taken:
 *
 *   index   1 to 19 ASCII digits (so it fits 64 bits; no sign, space or underscore)
 *   label   -?DIGITS(.DIGITS*)? whose digits make an integer of at most 2^53 and that has at
 *           most 22 decimals: its value is that integer divided by an exact power of ten, one
 *           correctly rounded IEEE division, as Python's float() gives (no locale, no strtod);
 *           always finite and within float32's range
 *   path    non-empty printable ASCII or strict UTF-8 (overlong forms, surrogates and code points
 *           past U+10FFFF refused, as Python's decoder does) with no backslash, no "..", no
 *           leading "/", no ":" as its second character; non-ASCII paths must also pass
 *           str.isprintable(), checked once the GIL is back
 *   end     "\n" or "\r\n"; the whole line at most LST_MAX_LINE bytes; every line of a file
 *           with the same column count
 *
 * Blank lines, a byte order mark, a last line without a newline: all Python's.
 */
#define PY_SSIZE_T_CLEAN
#include "lstscan.h"

#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Longest line taken here (parse_line refuses lines past MAX_LINE = 1 MiB; this is far below). */
#define LST_MAX_LINE 65536
/* m * 10 + d stays below 2^64 while m is below this; the label's integer must end <= 2^53. */
#define LST_GROW_LIMIT 100000000000000000ULL
#define LST_MAX_EXACT (1ULL << 53)

/* One IEEE double division is correctly rounded only where doubles are evaluated as doubles. */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
#define LST_LABELS_IN_C 1
#else
#define LST_LABELS_IN_C 0
#endif

static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

const char imp_lst_scan_doc[] =
    "lst_scan(data, start, columns, limit, cls) -> (end, count, columns, ids, items)\n\n"
    "Parse up to limit whole lines of .lst text in data from offset start, stopping before the\n"
    "first line outside the strict subset (see native/lstscan.c) or without a newline.  columns:\n"
    "the file's column count, 0 while unknown.  end: where scanning stopped; ids: the indices as\n"
    "native uint64 bytes (None when cls is given); items: cls objects built as object.__new__(cls)\n"
    "with attributes index, labels, path set in that order (None when cls is None).";

/* What one call found, grown as lines are accepted (plain malloc: filled without the GIL). */
typedef struct {
    size_t n, cap, nlabels;
    uint64_t *ids;
    double *labels;
    size_t *line_start, *path_start, *path_len;
    unsigned char *ascii;
} scan_out;

static void out_free(scan_out *o) {
    free(o->ids);
    free(o->labels);
    free(o->line_start);
    free(o->path_start);
    free(o->path_len);
    free(o->ascii);
}

static int grow1(void **p, size_t count, size_t size) {
    void *q;
    if (count > SIZE_MAX / size) return -1;
    q = realloc(*p, count * size);
    if (!q) return -1;
    *p = q;
    return 0;
}

/* Room for one more line; -1 when memory runs out. */
static int out_reserve(scan_out *o) {
    size_t cap;
    if (o->n < o->cap) return 0;
    cap = o->cap ? o->cap * 2 : 256;
    if (grow1((void **)&o->ids, cap, sizeof *o->ids) || grow1((void **)&o->line_start, cap, sizeof(size_t)) ||
        grow1((void **)&o->path_start, cap, sizeof(size_t)) || grow1((void **)&o->path_len, cap, sizeof(size_t)) ||
        grow1((void **)&o->ascii, cap, 1) ||
        (o->nlabels && (cap > SIZE_MAX / o->nlabels ||
                        grow1((void **)&o->labels, cap * o->nlabels, sizeof *o->labels))))
        return -1;
    o->cap = cap;
    return 0;
}

static int is_digit(unsigned char c) { return (unsigned)(c - '0') < 10u; }

/* A label field ending in a tab at *pp; on success *pp is past the tab. */
static int take_label(const unsigned char **pp, const unsigned char *end, double *value) {
    const unsigned char *p = *pp, *digits;
    uint64_t m = 0;
    int negative = 0, decimals = 0;
    double v;
    if (!LST_LABELS_IN_C) return 0;
    if (p < end && *p == '-') {
        negative = 1;
        p++;
    }
    for (digits = p; p < end && is_digit(*p); p++) {
        if (m >= LST_GROW_LIMIT) return 0;
        m = m * 10 + (uint64_t)(*p - '0');
    }
    if (p == digits) return 0;
    if (p < end && *p == '.') {
        for (p++; p < end && is_digit(*p); p++) {
            if (m >= LST_GROW_LIMIT || ++decimals > 22) return 0;
            m = m * 10 + (uint64_t)(*p - '0');
        }
    }
    if (p >= end || *p != '\t' || m > LST_MAX_EXACT) return 0;
    v = (double)m / POW10[decimals];
    *value = negative ? -v : v;
    *pp = p + 1;
    return 1;
}

/* Length of the strict UTF-8 sequence at p (before end), 0 if it is not one Python decodes. */
static size_t utf8_length(const unsigned char *p, const unsigned char *end) {
    unsigned char c = p[0], lo = 0x80, hi = 0xBF;
    size_t len, i;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F; /* nothing past U+10FFFF */
    } else
        return 0;
    if ((size_t)(end - p) < len || p[1] < lo || p[1] > hi) return 0;
    for (i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return len;
}

/* A path check_relative_path takes without doubt (see the top of the file); *ascii says
 * whether str.isprintable() is still to be asked. */
static int take_path(const unsigned char *p, const unsigned char *end, int *ascii) {
    const unsigned char *second;
    size_t step;
    if (p >= end || *p == '/') return 0;
    *ascii = 1;
    second = p + (*p < 0x80 ? 1 : utf8_length(p, end));
    if (second < end && *second == ':') return 0;
    for (; p < end; p += step) {
        unsigned char c = *p;
        step = 1;
        if (c >= 0x80) {
            step = utf8_length(p, end);
            if (!step) return 0;
            *ascii = 0;
        } else if (c < 0x20 || c == 0x7F || c == '\\' || (c == '.' && p + 1 < end && p[1] == '.'))
            return 0;
    }
    return 1;
}

/* One line [s, nl) (nl at its '\n') into slot o->n; 0 when it is Python's to judge. */
static int take_line(const unsigned char *s, const unsigned char *nl, size_t columns, const unsigned char *base,
                     scan_out *o) {
    const unsigned char *p = s, *end = nl;
    uint64_t id = 0;
    size_t k, nlabels = columns - 2;
    int digits = 0, ascii;
    for (; p < end && is_digit(*p); p++, digits++) {
        if (digits == 19) return 0;
        id = id * 10 + (uint64_t)(*p - '0');
    }
    if (!digits || p >= end || *p != '\t') return 0;
    p++;
    for (k = 0; k < nlabels; k++)
        if (!take_label(&p, end, &o->labels[o->n * nlabels + k])) return 0;
    if (end > p && end[-1] == '\r') end--;
    if (!take_path(p, end, &ascii)) return 0;
    o->ids[o->n] = id;
    o->line_start[o->n] = (size_t)(s - base);
    o->path_start[o->n] = (size_t)(p - base);
    o->path_len[o->n] = (size_t)(end - p);
    o->ascii[o->n] = (unsigned char)ascii;
    o->n++;
    return 1;
}

/* Columns of the line [s, nl): its tabs plus one. */
static size_t count_columns(const unsigned char *s, const unsigned char *nl) {
    size_t tabs = 0;
    for (; s < nl; s++) tabs += *s == '\t';
    return tabs + 1;
}

/* Scan lines from start (no GIL); *columns set from the first line taken when 0.
 * Returns where scanning stopped, or (size_t)-1 when memory ran out. */
static size_t scan(const unsigned char *data, size_t len, size_t start, size_t limit, size_t *columns,
                   scan_out *o) {
    size_t pos = start;
    while (o->n < limit && pos < len) {
        size_t span = len - pos < LST_MAX_LINE ? len - pos : LST_MAX_LINE;
        const unsigned char *s = data + pos, *nl = memchr(s, '\n', span);
        size_t cols = *columns;
        if (!nl) break;
        if (!cols) {
            cols = count_columns(s, nl);
            if (cols < 3) break;
            o->nlabels = cols - 2;
        }
        if (out_reserve(o) < 0) return (size_t)-1;
        if (!take_line(s, nl, cols, data, o)) break;
        *columns = cols;
        pos = (size_t)(nl - data) + 1;
    }
    return pos;
}

static PyObject *S_INDEX, *S_LABELS, *S_PATH, *EMPTY;

static int intern_names(void) {
    if (EMPTY) return 0;
    S_INDEX = PyUnicode_InternFromString("index");
    S_LABELS = PyUnicode_InternFromString("labels");
    S_PATH = PyUnicode_InternFromString("path");
    EMPTY = PyTuple_New(0);
    return S_INDEX && S_LABELS && S_PATH && EMPTY ? 0 : -1;
}

/* The path of line i as str: ASCII copied, else decoded (the bytes were checked strict UTF-8). */
static PyObject *path_str(const unsigned char *data, const scan_out *o, size_t i) {
    const char *s = (const char *)data + o->path_start[i];
    size_t n = o->path_len[i];
    PyObject *str;
    if (o->ascii[i]) {
        str = PyUnicode_New((Py_ssize_t)n, 127);
        if (str) memcpy(PyUnicode_DATA(str), s, n);
        return str;
    }
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)n, "strict");
}

/* The first line whose non-ASCII path str.isprintable() refuses (those are Python's: some such
 * names are still allowed), or o->n; -1 on error. */
static Py_ssize_t printable_prefix(const unsigned char *data, const scan_out *o) {
    for (size_t i = 0; i < o->n; i++) {
        PyObject *str, *ok;
        int good;
        if (o->ascii[i]) continue;
        str = path_str(data, o, i);
        if (!str) return -1;
        ok = PyObject_CallMethod(str, "isprintable", NULL);
        Py_DECREF(str);
        if (!ok) return -1;
        good = PyObject_IsTrue(ok);
        Py_DECREF(ok);
        if (good < 0) return -1;
        if (!good) return (Py_ssize_t)i;
    }
    return (Py_ssize_t)o->n;
}

/* object.__new__(cls) with index, labels and path set as a frozen dataclass's __init__ sets them. */
static PyObject *make_item(PyTypeObject *cls, const unsigned char *data, const scan_out *o, size_t i) {
    PyObject *item, *index, *labels, *path;
    int rc;
    index = PyLong_FromUnsignedLongLong(o->ids[i]);
    labels = PyTuple_New((Py_ssize_t)o->nlabels);
    path = path_str(data, o, i);
    item = index && labels && path ? cls->tp_new(cls, EMPTY, NULL) : NULL;
    for (size_t k = 0; item && k < o->nlabels; k++) {
        PyObject *value = PyFloat_FromDouble(o->labels[i * o->nlabels + k]);
        if (!value) Py_CLEAR(item);
        else PyTuple_SET_ITEM(labels, (Py_ssize_t)k, value);
    }
    rc = item ? 0 : -1;
    if (!rc) rc = PyObject_GenericSetAttr(item, S_INDEX, index);
    if (!rc) rc = PyObject_GenericSetAttr(item, S_LABELS, labels);
    if (!rc) rc = PyObject_GenericSetAttr(item, S_PATH, path);
    Py_XDECREF(index);
    Py_XDECREF(labels);
    Py_XDECREF(path);
    if (rc) Py_CLEAR(item);
    return item;
}

static PyObject *build_items(PyTypeObject *cls, const unsigned char *data, const scan_out *o, size_t n) {
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list && i < n; i++) {
        PyObject *item = make_item(cls, data, o, i);
        if (!item) Py_CLEAR(list);
        else PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    return list;
}

PyObject *imp_py_lst_scan(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t start, limit, kept;
    Py_ssize_t columns_in;
    PyObject *cls, *ids = NULL, *items = NULL, *result = NULL;
    scan_out o;
    size_t columns, end;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnnO:lst_scan", &view, &start, &columns_in, &limit, &cls)) return NULL;
    memset(&o, 0, sizeof o);
    if (start < 0 || start > view.len || columns_in < 0 || columns_in == 1 || columns_in == 2 || limit < 0) {
        PyErr_SetString(PyExc_ValueError, "lst_scan: start, columns or limit out of range");
        goto done;
    }
    if (cls != Py_None && (!PyType_Check(cls) || !((PyTypeObject *)cls)->tp_new)) {
        PyErr_SetString(PyExc_TypeError, "lst_scan: cls must be an instantiable class or None");
        goto done;
    }
    if (intern_names() < 0) goto done;
    columns = (size_t)columns_in;
    o.nlabels = columns ? columns - 2 : 0;
    Py_BEGIN_ALLOW_THREADS
    end = scan(view.buf, (size_t)view.len, (size_t)start, (size_t)limit, &columns, &o);
    Py_END_ALLOW_THREADS
    if (end == (size_t)-1) {
        PyErr_NoMemory();
        goto done;
    }
    kept = printable_prefix(view.buf, &o);
    if (kept < 0) goto done;
    if ((size_t)kept < o.n) {
        end = o.line_start[kept];
        o.n = (size_t)kept;
    }
    if (!o.n) columns = (size_t)columns_in;
    if (cls == Py_None) {
        ids = PyBytes_FromStringAndSize((const char *)o.ids, (Py_ssize_t)(o.n * sizeof *o.ids));
        items = Py_NewRef(Py_None);
    } else {
        items = build_items((PyTypeObject *)cls, view.buf, &o, o.n);
        ids = Py_NewRef(Py_None);
    }
    if (ids && items) result = Py_BuildValue("(nnnOO)", (Py_ssize_t)end, (Py_ssize_t)o.n, (Py_ssize_t)columns, ids, items);
done:
    Py_XDECREF(ids);
    Py_XDECREF(items);
    out_free(&o);
    PyBuffer_Release(&view);
    return result;
}

/* ------------------------------------------------------------------------------------------ */
/* ids_mark: the validation pass's "seen before?" for a batch of ids (imgprep.splits.stream.IndexSet) */

const char imp_ids_mark_doc[] =
    "ids_mark(pages, ids, start, page_bits) -> (position, status)\n\n"
    "Set the bit of each id of ids (native uint64 values) from position start on in pages, a dict\n"
    "of page number -> bytearray bitmap of page_bits ids, stopping where IndexSet.add must decide:\n"
    "status 0 at the end, 1 at an id already set (nothing set for it), 2 at an id whose page is\n"
    "not in the dict yet.  The same state as IndexSet.add one id at a time, without Python per id.";

PyObject *imp_py_ids_mark(PyObject *self, PyObject *args) {
    PyObject *pages, *page = NULL;
    Py_buffer ids;
    Py_ssize_t start, n, i;
    unsigned long long page_bits, current = 0;
    unsigned char *bits = NULL;
    int status = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!y*nK:ids_mark", &PyDict_Type, &pages, &ids, &start, &page_bits)) return NULL;
    n = ids.len / (Py_ssize_t)sizeof(uint64_t);
    if (start < 0 || page_bits == 0 || page_bits % 8) {
        PyBuffer_Release(&ids);
        PyErr_SetString(PyExc_ValueError, "ids_mark: bad start or page size");
        return NULL;
    }
    for (i = start; i < n; i++) {
        uint64_t id;
        memcpy(&id, (const char *)ids.buf + (size_t)i * sizeof id, sizeof id);
        unsigned long long number = id / page_bits, bit = id % page_bits;
        if (bits == NULL || number != current) {
            PyObject *key = PyLong_FromUnsignedLongLong(number);
            if (key == NULL) goto fail;
            page = PyDict_GetItemWithError(pages, key); /* borrowed */
            Py_DECREF(key);
            if (page == NULL) {
                if (PyErr_Occurred()) goto fail;
                status = 2;
                break;
            }
            if (!PyByteArray_Check(page) || (unsigned long long)PyByteArray_GET_SIZE(page) * 8 != page_bits) {
                PyErr_SetString(PyExc_TypeError, "ids_mark: a page is not a bytearray of page_bits bits");
                goto fail;
            }
            bits = (unsigned char *)PyByteArray_AS_STRING(page);
            current = number;
        }
        if (bits[bit / 8] & (1u << (bit % 8))) {
            status = 1;
            break;
        }
        bits[bit / 8] |= (unsigned char)(1u << (bit % 8));
    }
    PyBuffer_Release(&ids);
    return Py_BuildValue("ni", i, status);
fail:
    PyBuffer_Release(&ids);
    return NULL;
}
