/* The duplicate fingerprint of every image record a pack worker made, in one call without the GIL:
 * each record's RecordIO frame and image header taken apart, its image's BLAKE2b digest, a decode at
 * a DCT reduction (again finer when bars border it), the fingerprint, and one fixed-width row out.
 *
 * It is imgprep.splits.dedup.measure() of the stored bytes, step for step, so the rows are the ones
 * inspect would compute from the packed output; what the Python side would not hand to the native
 * decoder (not a JPEG, CMYK, damage, a record split around RecordIO's magic) is left to it, row
 * marked.  No Python object per record: the rows reach the pack's writer as columns.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blake2b.h"
#include "core.h"
#include "phash.h"
#include "recordio.h"

#define WINDOWS (MAX_BOXES - 1)
#define IR_SIZE 24 /* MXNet's image record header: flag, label, id, id2 */
#define NO_CHROMA 0xFFFFFFFFu

enum { ROW_OK = 0, ROW_FLAT = 1, ROW_SMALL = 2, ROW_PYTHON = 3 };

/* One record's row (imgprep.imaging.phash.ROW mirrors it, field for field). */
typedef struct {
    uint64_t digest, hash, check, area;
    uint64_t windows[WINDOWS], window_check[WINDOWS], alt_hash[MAX_ALTS], alt_check[MAX_ALTS];
    uint32_t chroma, window_chroma[WINDOWS], alt_chroma[MAX_ALTS], width, height;
    uint8_t outcome, detail, channels, alts;
} print_row;

typedef struct {
    const float *dct, *cdct;
    print_params p;
    int min_side, near_min_side, no_detail;
    double detail_scale;
} batch_ctx;

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* phash.detail_level: floor(share x scale), at most the byte's no-detail level. */
static uint8_t detail_level(double share, const batch_ctx *c) {
    double x = share * c->detail_scale;
    if (!(x > 0)) return 0;
    return x >= c->no_detail ? (uint8_t)c->no_detail : (uint8_t)(int)x;
}

/* The image bytes of a one-part record (NULL: Python takes it apart, and says what is wrong). */
static const unsigned char *image_of(const unsigned char *rec, size_t size, size_t *len) {
    if (size < 8 || le32(rec) != RIO_MAGIC || le32(rec + 4) >> 29) return NULL;
    size_t length = le32(rec + 4) & RIO_MAX;
    if (8 + length > size || length < IR_SIZE) return NULL;
    uint64_t start = IR_SIZE + 4 * (uint64_t)le32(rec + 8);
    if (start > length) return NULL;
    *len = length - (size_t)start;
    return rec + 8 + start;
}

/* Decoded as dedup.measure decodes: at a reduction keeping min_side, finer when bars border it. */
static int decode_for_print(const unsigned char *img, size_t len, const batch_ctx *c, imp_luma *info,
                            unsigned char **luma, unsigned char **chroma) {
    char err[IMP_ERRLEN];
    int rc = imp_decode_ycc(img, len, c->min_side, info, luma, chroma, err);
    if (rc != IMP_OK) return rc;
    int small = info->sw < info->sh ? info->sw : info->sh, least = info->width < info->height ? info->width : info->height;
    if (least < 2 * small) return IMP_OK;
    int box[4];
    imp_content_box(*luma, info->sh, info->sw, c->p.tol, c->p.peels, box);
    if (box[1] - box[0] == info->sh && box[3] - box[2] == info->sw) return IMP_OK;
    free(*luma);
    free(*chroma);
    *luma = *chroma = NULL;
    return imp_decode_ycc(img, len, 2 * c->min_side, info, luma, chroma, err);
}

/* Phash._assemble's alternates: each once, first-seen order, its last check and chroma, none equal
 * to the hash itself. */
static int unique_alternates(uint64_t hash, const uint64_t *ah, const uint64_t *ac, const uint32_t *aw, int n,
                             print_row *row) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (ah[i] == hash) continue;
        int j = 0;
        while (j < m && row->alt_hash[j] != ah[i]) j++;
        row->alt_hash[j] = ah[i];
        row->alt_check[j] = ac[i];
        row->alt_chroma[j] = aw[i];
        m += j == m;
    }
    return m;
}

static void print_row_of(const unsigned char *rec, size_t size, const batch_ctx *c, print_row *row) {
    size_t len = 0;
    const unsigned char *img = image_of(rec, size, &len);
    memset(row, 0, sizeof *row);
    row->outcome = ROW_PYTHON;
    if (!img) return;
    row->digest = imp_blake2b_word(img, len, 8);
    if (len < 3 || img[0] != 0xFF || img[1] != 0xD8 || img[2] != 0xFF) return;
    imp_luma info;
    unsigned char *luma = NULL, *chroma = NULL;
    if (decode_for_print(img, len, c, &info, &luma, &chroma) != IMP_OK) goto done;
    uint64_t hash[MAX_BOXES], check[MAX_BOXES], ah[MAX_ALTS], ac[MAX_ALTS];
    uint32_t colour[MAX_BOXES], aw[MAX_ALTS];
    int alts = 0, k = 0;
    double share = 0;
    if ((info.width < info.height ? info.width : info.height) >= c->near_min_side) {
        k = imp_print_image(luma, chroma, info.sh, info.sw, c->dct, c->cdct, &c->p, hash, check, colour, ah, ac, aw,
                            &alts, &share);
        if (k < 0 || (k > 0 && k != MAX_BOXES)) goto done;
        row->outcome = k ? ROW_OK : ROW_FLAT;
    } else {
        row->outcome = ROW_SMALL;
    }
    row->width = (uint32_t)info.width;
    row->height = (uint32_t)info.height;
    row->channels = (uint8_t)info.components;
    row->area = (uint64_t)info.width * (uint64_t)info.height;
    if (row->outcome == ROW_OK) {
        row->hash = hash[0];
        row->check = check[0];
        row->chroma = colour[0];
        memcpy(row->windows, hash + 1, sizeof row->windows);
        memcpy(row->window_check, check + 1, sizeof row->window_check);
        memcpy(row->window_chroma, colour + 1, sizeof row->window_chroma);
        row->detail = detail_level(share, c);
        row->alts = (uint8_t)unique_alternates(hash[0], ah, ac, aw, alts, row);
    } else {
        row->detail = (uint8_t)c->no_detail;
        row->chroma = NO_CHROMA;
        for (int i = 0; i < WINDOWS; i++) row->window_chroma[i] = NO_CHROMA;
    }
done:
    free(luma);
    free(chroma);
}

size_t imp_phash_row_size(void) { return sizeof(print_row); }

const char imp_phash_records_doc[] =
             "phash_records(records, sizes, dct, params, chroma_dct, chroma_flat, (min_side, near_min_side,\n"
             "              detail_scale, no_detail)) -> bytes\n\n"
             "One fixed-width row (imgprep.imaging.phash.ROW) per record of non-zero size in `records` (framed\n"
             "RecordIO records back to back; `sizes`: int64 framed sizes, 0 for a record not written), as\n"
             "dedup.measure() of its stored image gives it; outcome 3 where Python must measure it.";

PyObject *imp_py_phash_records(PyObject *self, PyObject *args) {
    Py_buffer recs, vsizes, vdct, vcdct;
    batch_ctx c;
    PyObject *out = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*(iiiddd(dd)d)y*d(iidi):phash_records", &recs, &vsizes, &vdct, &c.p.tol,
                          &c.p.peels, &c.p.min_content, &c.p.clip, &c.p.flat_std, &c.p.ambiguous, &c.p.cut[0],
                          &c.p.cut[1], &c.p.side_cut, &vcdct, &c.p.chroma_flat, &c.min_side, &c.near_min_side,
                          &c.detail_scale, &c.no_detail))
        return NULL;
    const int64_t *sizes = vsizes.buf;
    Py_ssize_t n = vsizes.len / (Py_ssize_t)sizeof *sizes, rows = 0, total = 0;
    int bad = vsizes.len % (Py_ssize_t)sizeof *sizes || vdct.len != 8 * 32 * (Py_ssize_t)sizeof(float) ||
              vcdct.len != 4 * 8 * (Py_ssize_t)sizeof(float) || c.min_side < 1 || c.no_detail < 0 || c.no_detail > 255;
    for (Py_ssize_t i = 0; i < n && !bad; i++) {
        bad = sizes[i] < 0 || sizes[i] > recs.len - total;
        total += sizes[i];
        rows += sizes[i] > 0;
    }
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "phash_records: sizes do not fit the records, or a bad DCT matrix or parameter");
    } else if ((out = PyBytes_FromStringAndSize(NULL, rows * (Py_ssize_t)sizeof(print_row)))) {
        print_row *row = (print_row *)PyBytes_AS_STRING(out);
        c.dct = vdct.buf;
        c.cdct = vcdct.buf;
        Py_BEGIN_ALLOW_THREADS
        const unsigned char *at = recs.buf;
        for (Py_ssize_t i = 0; i < n; at += sizes[i++])
            if (sizes[i]) print_row_of(at, (size_t)sizes[i], &c, row++);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&recs);
    PyBuffer_Release(&vsizes);
    PyBuffer_Release(&vdct);
    PyBuffer_Release(&vcdct);
    return out;
}
