/* imgprep._native.pack_batch: a whole chunk of records made in one call, the GIL released.
 *
 * The packer's workers used to run ~20 lines of Python per image (read the file, probe, plan,
 * transform, record header, framing).  With threads that Python shares one GIL, and on 16 cores
 * it, not libjpeg, set the pace.  Here a chunk's images are read, transformed (the same
 * geometry as imgprep/imaging/geometry.py and the same calls as imgprep/imaging/native.py),
 * given their image-record header and framed, all in C and without the GIL; the records come
 * back as one buffer plus each record's size.
 *
 * Anything out of the ordinary is left to Python, which runs the per-image path and decides
 * (a size of 0 for that item): a file that cannot be opened as a plain regular file, a symlink,
 * a non-JPEG, a colour space or subsampling the native path does not take, an image over the
 * pixel limit, a decoder error or warning, a pass-through check that fails.  Python's path then
 * falls back to Pillow or produces the very message it always did, so the output and the
 * skipped report are the same bytes whether or not this function handled an image.
 */
#define _GNU_SOURCE /* O_NOFOLLOW, O_CLOEXEC */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "batch.h"
#include "core.h"
#include "recordio.h"

#define IR_SIZE 24

/* ------------------------------------------------------------------------------------------ */
/* The spec (imgprep.imaging.spec.TransformSpec, flattened by imgprep/imaging/native.py). */

enum { FIT_CROP = 0, FIT_PAD = 1, FIT_STRETCH = 2 };

typedef struct {
    int pass_through;
    int jpg;             /* encoding == "jpg" */
    long long resize;    /* shorter side, 0: none */
    long long size_w, size_h; /* --size, 0 x 0: none */
    int fit;
    int center_crop;
    int quality;
    int color;           /* 1 RGB, 0 grey, -1 as decoded */
    long long max_pixels;
    int pad;
} bspec;

/* imgprep.imaging.geometry.Plan, in integers */
typedef struct {
    long long box[4];
    long long size[2];
    long long canvas[2]; /* == size unless padding */
    long long offset[2];
} bplan;

static long long max1(long long v) { return v < 1 ? 1 : v; }
static long long min2(long long a, long long b) { return a < b ? a : b; }

/* geometry.plan(width, height, spec), operand for operand (all values are non-negative, so C's
 * division is Python's floor division). */
static void make_plan(long long w, long long h, const bspec *s, bplan *p) {
    long long box[4] = {0, 0, w, h}, bw, bh, tw = s->size_w, th = s->size_h;
    if (s->center_crop) {
        if (h > w) {
            long long top = (h - w) / 2;
            box[1] = top;
            box[3] = top + w;
        } else {
            long long left = (w - h) / 2;
            box[0] = left;
            box[2] = left + h;
        }
    }
    bw = box[2] - box[0];
    bh = box[3] - box[1];
    memcpy(p->box, box, sizeof box);
    p->offset[0] = p->offset[1] = 0;
    if (s->resize) {
        long long n = s->resize;
        if (bh > bw) {
            p->size[0] = n;
            p->size[1] = max1(bh * n / bw);
        } else {
            p->size[0] = max1(bw * n / bh);
            p->size[1] = n;
        }
    } else if (!tw) {
        p->size[0] = bw;
        p->size[1] = bh;
    } else if (s->fit == FIT_STRETCH) {
        p->size[0] = tw;
        p->size[1] = th;
    } else if (s->fit == FIT_CROP) {
        p->size[0] = tw;
        p->size[1] = th;
        if (bw * th > bh * tw) {
            long long cw = max1(min2(bw, (bh * tw + th / 2) / th)), left = (bw - cw) / 2;
            p->box[0] = left;
            p->box[1] = 0;
            p->box[2] = left + cw;
            p->box[3] = bh;
        } else {
            long long ch = max1(min2(bh, (bw * th + tw / 2) / tw)), top = (bh - ch) / 2;
            p->box[0] = 0;
            p->box[1] = top;
            p->box[2] = bw;
            p->box[3] = top + ch;
        }
    } else { /* pad: scale to fit inside, centre on a canvas */
        long long sw, sh;
        if (bw * th >= bh * tw) {
            sw = tw;
            sh = max1(min2(th, (bh * tw + bw / 2) / bw));
        } else {
            sw = max1(min2(tw, (bw * th + bh / 2) / bh));
            sh = th;
        }
        p->size[0] = sw;
        p->size[1] = sh;
        p->canvas[0] = tw;
        p->canvas[1] = th;
        p->offset[0] = (tw - sw) / 2;
        p->offset[1] = (th - sh) / 2;
        return;
    }
    p->canvas[0] = p->size[0];
    p->canvas[1] = p->size[1];
}

/* geometry.dct_scale */
static int dct_scale(const bplan *p) {
    long long bw = p->box[2] - p->box[0], bh = p->box[3] - p->box[1];
    for (int s = 8; s >= 2; s /= 2)
        if (bw >= p->size[0] * s && bh >= p->size[1] * s) return s;
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* A growing byte buffer (no Python: used with the GIL released). */

typedef struct {
    unsigned char *data;
    size_t len, cap;
} buf;

static int reserve(buf *b, size_t extra) {
    size_t need = b->len + extra, cap = b->cap ? b->cap : 1 << 16;
    if (need < b->len) return -1;
    if (need <= b->cap) return 0;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    unsigned char *d = realloc(b->data, cap);
    if (!d) return -1;
    b->data = d;
    b->cap = cap;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* RecordIO framing (imgprep.formats.recordio.frame; module.c's frame() does the same for one
 * record from Python).  The payload sits at out->data + at, already in place; it is framed there
 * when no aligned magic word occurs in it (almost always), else rewritten part by part. */

/* The record's payload (n bytes) was placed at out->data + start + 8; frame it in place.
 * Returns the framed size, or 0 when it cannot be framed (too large, no memory). */
static size_t frame_in_place(buf *out, size_t start, size_t n) {
    size_t pad = (4 - n % 4) % 4, magics;
    if (n > RIO_MAX) return 0;
    magics = count_aligned_magic(out->data + start + 8, n);
    if (magics == 0) {
        put32(out->data + start, RIO_MAGIC);
        put32(out->data + start + 4, (uint32_t)n);
        memset(out->data + start + 8 + n, 0, pad);
        return 8 + n + pad;
    }
    /* Each aligned magic word ends a part: its 4 bytes become the next part's 8-byte header. */
    unsigned char *payload = malloc(n ? n : 1);
    size_t total = 8 * (magics + 1) + (n - 4 * magics) + pad, from = 0, o = start;
    if (!payload) return 0;
    memcpy(payload, out->data + start + 8, n);
    if (out->cap - start < total) {
        size_t keep = out->len;
        out->len = start;
        if (reserve(out, total) != 0) {
            out->len = keep;
            free(payload);
            return 0;
        }
        out->len = keep;
    }
    for (size_t i = 0; i + 4 <= n; i += 4) {
        uint32_t w;
        memcpy(&w, payload + i, 4);
        if (w != RIO_MAGIC) continue;
        put32(out->data + o, RIO_MAGIC);
        put32(out->data + o + 4, ((from == 0 ? 1u : 2u) << 29) | (uint32_t)(i - from));
        memcpy(out->data + o + 8, payload + from, i - from);
        o += 8 + (i - from);
        from = i + 4;
    }
    put32(out->data + o, RIO_MAGIC);
    put32(out->data + o + 4, ((from ? 3u : 0u) << 29) | (uint32_t)(n - from));
    memcpy(out->data + o + 8, payload + from, n - from);
    memset(out->data + o + 8 + (n - from), 0, pad);
    free(payload);
    return total;
}

/* ------------------------------------------------------------------------------------------ */
/* What the writer keeps per record, made here so its thread does nothing per record: each
 * record's CRC-32 (imgprep.formats.checksums.record_crc: zlib's CRC-32 of the framed bytes) and
 * the packed image's size (imgprep.formats.imagesize.dimensions, ported for JPEGs). */

static uint32_t crc_table[16][256];
static int crc_ready; /* set under the GIL (pack_batch's caller holds it when it builds the table) */
static int crc_clmul; /* the CPU multiplies carry-less (PCLMULQDQ): crc32_fold below */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CRC_FOLD 1
/* zlib's CRC-32 by folding with carry-less multiplies (Intel's "Fast CRC Computation Using
 * PCLMULQDQ", as Chromium's zlib and Linux's crc32-pclmul do it; the constants are theirs):
 * about 10x the table's speed, so that a record's checksum costs a worker less than reading
 * the file.  `crc` is the running state (not inverted); n >= 64 and a multiple of 16. */
__attribute__((target("pclmul,sse4.1"))) static uint32_t crc32_fold(uint32_t crc, const unsigned char *p,
                                                                    size_t n) {
    const __m128i k1k2 = _mm_set_epi64x(0x01c6e41596, 0x0154442bd4), k3k4 = _mm_set_epi64x(0x00ccaa009e, 0x01751997d0);
    const __m128i k5 = _mm_set_epi64x(0, 0x0163cd6124), poly = _mm_set_epi64x(0x01f7011641, 0x01db710641);
    const __m128i low32 = _mm_setr_epi32(~0, 0, ~0, 0);
    __m128i x1 = _mm_loadu_si128((const __m128i *)p), x2 = _mm_loadu_si128((const __m128i *)(p + 16));
    __m128i x3 = _mm_loadu_si128((const __m128i *)(p + 32)), x4 = _mm_loadu_si128((const __m128i *)(p + 48));
    __m128i t;
    x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
    for (p += 64, n -= 64; n >= 64; p += 64, n -= 64) { /* four lanes, 512 bits a step */
        __m128i f1 = _mm_clmulepi64_si128(x1, k1k2, 0x00), f2 = _mm_clmulepi64_si128(x2, k1k2, 0x00);
        __m128i f3 = _mm_clmulepi64_si128(x3, k1k2, 0x00), f4 = _mm_clmulepi64_si128(x4, k1k2, 0x00);
        x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k1k2, 0x11), f1), _mm_loadu_si128((const __m128i *)p));
        x2 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x2, k1k2, 0x11), f2),
                           _mm_loadu_si128((const __m128i *)(p + 16)));
        x3 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x3, k1k2, 0x11), f3),
                           _mm_loadu_si128((const __m128i *)(p + 32)));
        x4 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x4, k1k2, 0x11), f4),
                           _mm_loadu_si128((const __m128i *)(p + 48)));
    }
    /* the four lanes into one, then 128 bits a step */
    t = _mm_clmulepi64_si128(x1, k3k4, 0x00);
    x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x11), x2), t);
    t = _mm_clmulepi64_si128(x1, k3k4, 0x00);
    x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x11), x3), t);
    t = _mm_clmulepi64_si128(x1, k3k4, 0x00);
    x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x11), x4), t);
    for (; n >= 16; p += 16, n -= 16) {
        t = _mm_clmulepi64_si128(x1, k3k4, 0x00);
        x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x11), _mm_loadu_si128((const __m128i *)p)), t);
    }
    /* 128 bits to 64, then Barrett's reduction to 32 */
    t = _mm_clmulepi64_si128(x1, k3k4, 0x10);
    x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), t);
    t = _mm_srli_si128(x1, 4);
    x1 = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x1, low32), k5, 0x00), t);
    t = _mm_clmulepi64_si128(_mm_and_si128(x1, low32), poly, 0x10);
    t = _mm_clmulepi64_si128(_mm_and_si128(t, low32), poly, 0x00);
    return (uint32_t)_mm_extract_epi32(_mm_xor_si128(x1, t), 1);
}
#endif

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (int i = 0; i < 256; i++)
        for (int s = 1; s < 16; s++) crc_table[s][i] = (crc_table[s - 1][i] >> 8) ^ crc_table[0][crc_table[s - 1][i] & 0xFF];
#ifdef CRC_FOLD
    __builtin_cpu_init();
    crc_clmul = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
#endif
    crc_ready = 1;
}

static uint32_t crc32_of(const unsigned char *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
#ifdef CRC_FOLD
    if (crc_clmul && n >= 64) { /* the whole 16-byte blocks folded, the tail by the table */
        size_t whole = n & ~(size_t)15;
        c = crc32_fold(c, p, whole);
        p += whole;
        n -= whole;
    }
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; n >= 16; p += 16, n -= 16) { /* slicing by 16 */
        uint32_t w[4];
        memcpy(w, p, 16);
        w[0] ^= c;
        c = 0;
        for (int k = 0; k < 4; k++)
            c ^= crc_table[15 - 4 * k][w[k] & 0xFF] ^ crc_table[14 - 4 * k][(w[k] >> 8) & 0xFF] ^
                 crc_table[13 - 4 * k][(w[k] >> 16) & 0xFF] ^ crc_table[12 - 4 * k][w[k] >> 24];
    }
#endif
    while (n--) c = crc_table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    return ~c;
}

/* imgprep.formats.imagesize._jpeg, step for step: the first SOF's size; -1s for None. */
static void jpeg_size(const unsigned char *d, size_t size, int64_t *wh) {
    size_t pos = 2;
    while (pos + 4 <= size) {
        unsigned marker, length;
        if (d[pos] != 0xFF) return;
        marker = d[pos + 1];
        if (marker == 0xFF) {
            pos += 1;
            continue;
        }
        if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
            pos += 2;
            continue;
        }
        length = (unsigned)d[pos + 2] << 8 | d[pos + 3];
        if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) {
            if (pos + 9 > size) return;
            wh[1] = (int64_t)d[pos + 5] << 8 | d[pos + 6];
            wh[0] = (int64_t)d[pos + 7] << 8 | d[pos + 8];
            return;
        }
        if (marker == 0xDA || length < 2) return;
        pos += 2 + length;
    }
}

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint32_t le32(const unsigned char *p) { return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]; }
static int64_t le16(const unsigned char *p) { return (int64_t)p[1] << 8 | p[0]; }
static int64_t le24(const unsigned char *p) { return (int64_t)p[2] << 16 | (int64_t)p[1] << 8 | p[0]; }

/* imgprep.formats.imagesize.dimensions, test for test: width and height into wh, -1s for None. */
static void image_size(const unsigned char *d, size_t n, int64_t *wh) {
    wh[0] = wh[1] = -1;
    if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) {
        jpeg_size(d, n, wh);
    } else if (n >= 24 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) {
        wh[0] = be32(d + 16);
        wh[1] = be32(d + 20);
    } else if (n >= 6 && (memcmp(d, "GIF87a", 6) == 0 || memcmp(d, "GIF89a", 6) == 0)) {
        if (n >= 10) {
            wh[0] = le16(d + 6);
            wh[1] = le16(d + 8);
        }
    } else if (n >= 2 && d[0] == 'B' && d[1] == 'M') {
        if (n >= 26) {
            wh[0] = llabs((int64_t)(int32_t)le32(d + 18));
            wh[1] = llabs((int64_t)(int32_t)le32(d + 22));
        }
    } else if (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0) {
        if (n >= 30 && memcmp(d + 12, "VP8 ", 4) == 0) {
            wh[0] = le16(d + 26) & 0x3FFF;
            wh[1] = le16(d + 28) & 0x3FFF;
        } else if (n >= 25 && memcmp(d + 12, "VP8L", 4) == 0) {
            uint32_t bits = le32(d + 21);
            wh[0] = (bits & 0x3FFF) + 1;
            wh[1] = ((bits >> 14) & 0x3FFF) + 1;
        } else if (n >= 30 && memcmp(d + 12, "VP8X", 4) == 0) {
            wh[0] = le24(d + 24) + 1;
            wh[1] = le24(d + 27) + 1;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* One item */

typedef struct {
    const char *path;          /* NULL: data/len hold the image */
    const unsigned char *data;
    size_t len;
    uint64_t id;
    const float *labels;       /* nlabels float32 values (already converted under the GIL) */
    int nlabels;
    int python;                /* something about the item itself Python must judge (its error) */
} bitem;

/* fstat through the system call on x86-64: headers of glibc >= 2.33 bind fstat() to fstat64@GLIBC_2.33,
 * which would lift the repaired wheel from manylinux2014 to manylinux_2_34 (Amazon Linux 2, under many
 * SageMaker images, has glibc 2.26).  The kernel's struct stat is glibc's there. */
#if defined(__x86_64__) && defined(SYS_fstat)
#define file_stat(fd, st) ((int)syscall(SYS_fstat, (fd), (st)))
#else
#define file_stat(fd, st) fstat((fd), (st))
#endif

/* imgprep.storage.roots.read_inside's common case: a regular file, not a symlink when guarded.
 * The file's bytes go to out->data + at (room reserved here).  -1: leave it to Python. */
static long long read_file(const char *path, int guarded, buf *out, size_t at) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (guarded ? O_NOFOLLOW : 0));
    struct stat st;
    long long got = -1;
    if (fd < 0) return -1;
    if (file_stat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 0 && st.st_size < RIO_MAX) {
        size_t size = (size_t)st.st_size, done = 0;
        size_t keep = out->len;
        out->len = at;
        int ok = reserve(out, size + 1 + 8) == 0;
        out->len = keep;
        if (ok) {
            for (;;) { /* one byte more than fstat says: a file that grew is left to Python */
                ssize_t r = read(fd, out->data + at + done, size + 1 - done);
                if (r < 0 && errno == EINTR) continue;
                if (r <= 0) break;
                done += (size_t)r;
                /* A read that ends exactly at fstat's size is the end of the file: asking again
                 * would cost every image a second read() that returns nothing. */
                if (done == size + 1 || done == size) break;
            }
            if (done == size) got = (long long)size;
        }
    }
    close(fd);
    return got;
}

/* imgprep.imaging.passthrough.check_passthrough: a known signature, and a JPEG's end marker. */
static int passes(const unsigned char *d, size_t n) {
    static const struct {
        const char *sig;
        size_t len;
    } sigs[] = {{"\xff\xd8\xff", 3}, {"\x89PNG\r\n\x1a\n", 8}, {"GIF87a", 6}, {"GIF89a", 6},
                {"BM", 2},           {"II*\x00", 4},           {"MM\x00*", 4}};
    if (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0) return 1;
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        if (n < sigs[i].len || memcmp(d, sigs[i].sig, sigs[i].len) != 0) continue;
        if (i > 0) return 1;
        for (size_t j = n - 1; j >= 3; j--) /* data.rfind(b"\xff\xd9") >= 2 */
            if (d[j] == 0xD9 && d[j - 1] == 0xFF) return 1;
        return 0;
    }
    return 0;
}

/* imgprep.imaging.native.transform_bytes for the images it runs in C; -1 where Python decides.
 * On 0 the encoded JPEG is in *jpeg (tjFree it). */
static int transform(const unsigned char *d, size_t n, const bspec *s, unsigned char **jpeg, unsigned long *jlen) {
    imp_info info;
    imp_job job;
    bplan p;
    char err[IMP_ERRLEN];
    long long w, h;
    int scale;
    if (!s->jpg || n < 3 || d[0] != 0xFF || d[1] != 0xD8 || d[2] != 0xFF) return -1;
    if (imp_probe(d, n, &info, err) != IMP_OK) return -1;
    if (info.colorspace != TJCS_YCbCr && info.colorspace != TJCS_GRAY) return -1;
    w = info.width;
    h = info.height;
    if (s->pad < 0 || s->pad > 255) return -1;
    if (w < 1 || h < 1 || w * h > s->max_pixels) return -1; /* spec.check_pixels raises: Python says so */
    if (s->resize) {
        make_plan(w, h, s, &p);
        if (p.canvas[0] * p.canvas[1] > s->max_pixels) return -1;
    }
    if (info.orientation >= 5) {
        long long t = w;
        w = h;
        h = t;
    }
    make_plan(w, h, s, &p);
    if (p.size[0] > 65535 || p.size[1] > 65535 || p.canvas[0] > 65535 || p.canvas[1] > 65535) return -1;
    scale = dct_scale(&p);
    memset(&job, 0, sizeof job);
    job.scale = scale;
    job.orientation = info.orientation;
    for (int i = 0; i < 4; i++) job.box[i] = (double)p.box[i] / scale;
    job.size[0] = (int)p.size[0];
    job.size[1] = (int)p.size[1];
    job.canvas[0] = (int)p.canvas[0];
    job.canvas[1] = (int)p.canvas[1];
    job.offset[0] = (int)p.offset[0];
    job.offset[1] = (int)p.offset[1];
    job.gray = s->color == 0 || (s->color == -1 && info.subsamp == TJSAMP_GRAY);
    job.quality = s->quality;
    job.pad = s->pad;
    *jpeg = NULL;
    if (imp_transform(d, n, &job, jpeg, jlen, err) != IMP_OK) {
        tjFree(*jpeg);
        *jpeg = NULL;
        return -1;
    }
    return 0;
}

/* imgprep.formats.recordio.pack_header with packing.worker.header_label's rule. */
static size_t header(unsigned char *o, const bitem *it, int pack_label) {
    int multi = pack_label && it->nlabels > 1;
    float label = multi || it->nlabels == 0 ? 0.0f : it->labels[0];
    uint32_t bits;
    put32(o, multi ? (uint32_t)it->nlabels : 0);
    memcpy(&bits, &label, 4);
    put32(o + 4, bits);
    put32(o + 8, (uint32_t)it->id);
    put32(o + 12, (uint32_t)(it->id >> 32));
    put32(o + 16, 0);
    put32(o + 20, 0);
    if (!multi) return IR_SIZE;
    for (int i = 0; i < it->nlabels; i++) {
        memcpy(&bits, &it->labels[i], 4);
        put32(o + IR_SIZE + 4 * (size_t)i, bits);
    }
    return IR_SIZE + 4 * (size_t)it->nlabels;
}

/* Append item's framed record to out; its size, or 0 when Python must take it.  Its CRC-32 goes
 * to *crc, its image's width and height to wh (image_size). */
static size_t one(const bitem *it, const bspec *s, int pack_label, int guarded, buf *out, buf *in, uint32_t *crc,
                  int64_t *wh) {
    size_t start = out->len, head_len = IR_SIZE + (pack_label && it->nlabels > 1 ? 4 * (size_t)it->nlabels : 0);
    const unsigned char *d = it->data;
    size_t n = it->len, framed;
    if (it->python) return 0;
    if (reserve(out, 8 + head_len) != 0) return 0;
    if (s->pass_through) { /* the file's bytes go straight after the header, framed in place */
        if (it->path) {
            long long got = read_file(it->path, guarded, out, start + 8 + head_len);
            if (got < 0) return 0;
            n = (size_t)got;
        } else {
            size_t keep = out->len;
            out->len = start + 8 + head_len;
            if (reserve(out, n + 8) != 0) {
                out->len = keep;
                return 0;
            }
            out->len = keep;
            memcpy(out->data + start + 8 + head_len, d, n);
        }
        if (!passes(out->data + start + 8 + head_len, n)) return 0;
    } else {
        unsigned char *jpeg = NULL;
        unsigned long jlen = 0;
        if (it->path) {
            long long got = read_file(it->path, guarded, in, 0);
            if (got < 0) return 0;
            d = in->data;
            n = (size_t)got;
        }
        if (transform(d, n, s, &jpeg, &jlen) != 0) return 0;
        size_t keep = out->len;
        out->len = start + 8 + head_len;
        int ok = reserve(out, jlen + 8) == 0;
        out->len = keep;
        if (ok) memcpy(out->data + start + 8 + head_len, jpeg, jlen);
        tjFree(jpeg);
        if (!ok) return 0;
        n = jlen;
    }
    header(out->data + start + 8, it, pack_label);
    image_size(out->data + start + 8 + head_len, n, wh);
    {
        size_t keep = out->len;
        out->len = start;
        framed = reserve(out, 8 + head_len + n + 4 + 8) == 0 ? frame_in_place(out, start, head_len + n) : 0;
        out->len = keep;
    }
    if (framed) {
        out->len = start + framed;
        *crc = crc32_of(out->data + start, framed);
    }
    return framed;
}

/* ------------------------------------------------------------------------------------------ */
/* The Python face */

/* A chunk's records handed to Python without a copy: the buffer the batch grew, exposed read-only
 * through the buffer protocol and freed with the object.  Copying it into a bytes object cost
 * a pass-through worker as much as reading the files (a memmove of every record, cold pages). */
typedef struct {
    PyObject_HEAD
    unsigned char *data;
    Py_ssize_t len;
} records_obj;

static PyObject *records_type;

static void records_dealloc(PyObject *self) {
    PyTypeObject *tp = Py_TYPE(self);
    free(((records_obj *)self)->data);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static int records_getbuffer(PyObject *self, Py_buffer *view, int flags) {
    records_obj *r = (records_obj *)self;
    return PyBuffer_FillInfo(view, self, r->data, r->len, 1, flags);
}

static PyObject *records_reduce(PyObject *self, PyObject *unused) {
    records_obj *r = (records_obj *)self;
    (void)unused;
    return Py_BuildValue("(O(y#))", (PyObject *)&PyBytes_Type, (const char *)r->data, r->len);
}

static PyMethodDef records_methods[] = {
    {"__reduce__", records_reduce, METH_NOARGS, "pickled as the bytes it holds"},
    {NULL, NULL, 0, NULL},
};

static Py_ssize_t records_length(PyObject *self) { return ((records_obj *)self)->len; }

static PyType_Slot records_slots[] = {
    {Py_tp_dealloc, records_dealloc},
    {Py_bf_getbuffer, records_getbuffer},
    {Py_tp_methods, records_methods},
    {Py_sq_length, records_length},
    {Py_tp_doc, "A chunk's framed records (read-only buffer), made by pack_batch."},
    {0, NULL},
};

static PyType_Spec records_spec = {"imgprep._native.Records", sizeof(records_obj), 0, Py_TPFLAGS_DEFAULT,
                                   records_slots};

/* The batch's buffer as a Records object, which owns it from here on (*out is emptied). */
static PyObject *take_records(buf *out) {
    PyObject *o;
    if (!records_type && !(records_type = PyType_FromSpec(&records_spec))) return NULL;
    o = ((PyTypeObject *)records_type)->tp_alloc((PyTypeObject *)records_type, 0);
    if (!o) return NULL;
    if (out->cap > out->len + out->len / 4 + (64 << 10)) { /* doubling left much unused: give it back */
        unsigned char *d = realloc(out->data, out->len ? out->len : 1);
        if (d) out->data = d;
    }
    if (!out->data && !(out->data = malloc(1))) {
        Py_DECREF(o);
        return PyErr_NoMemory();
    }
    ((records_obj *)o)->data = out->data;
    ((records_obj *)o)->len = (Py_ssize_t)out->len;
    out->data = NULL;
    out->len = out->cap = 0;
    return o;
}

static int parse_spec(PyObject *t, bspec *s) {
    return PyArg_ParseTuple(t, "ppLLLipiiLi:pack_batch spec", &s->pass_through, &s->jpg, &s->resize, &s->size_w,
                            &s->size_h, &s->fit, &s->center_crop, &s->quality, &s->color, &s->max_pixels, &s->pad);
}

/* Items' fields converted to C under the GIL; everything they point at is held in `keep`. */
typedef struct {
    bitem *items;
    Py_buffer *views;
    float *labels;
    Py_ssize_t n, nviews;
} batch;

static void free_batch(batch *b) {
    for (Py_ssize_t i = 0; i < b->nviews; i++) PyBuffer_Release(&b->views[i]);
    PyMem_Free(b->views);
    PyMem_Free(b->items);
    PyMem_Free(b->labels);
}

/* One item's fields, converted under the GIL.  An item whose own fields Python would refuse
 * (an id beyond 64 bits, a label float32 cannot hold, a path with a NUL) is marked for Python,
 * which reports it as it always did; only a failure of this call itself (memory) raises. */
static int fill_item(batch *b, Py_ssize_t i, PyObject *path, PyObject *data, PyObject *id, PyObject *labels,
                     PyObject *keep, float **next_label, const float *end) {
    bitem *it = &b->items[i];
    PyObject *seq;
    it->id = PyLong_AsUnsignedLongLong(id);
    if (it->id == (uint64_t)-1 && PyErr_Occurred()) goto python;
    if (path != Py_None) {
        PyObject *encoded;
        if (!PyUnicode_FSConverter(path, &encoded)) goto python;
        if (PyList_Append(keep, encoded) < 0) {
            Py_DECREF(encoded);
            return -1;
        }
        Py_DECREF(encoded);
        it->path = PyBytes_AS_STRING(encoded);
        if (strlen(it->path) != (size_t)PyBytes_GET_SIZE(encoded)) goto python;
    } else if (data != NULL && data != Py_None) {
        Py_buffer *v = &b->views[b->nviews];
        if (PyObject_GetBuffer(data, v, PyBUF_SIMPLE) < 0) goto python;
        b->nviews++;
        it->data = v->buf;
        it->len = (size_t)v->len;
    } else {
        goto python;
    }
    if (!PyTuple_Check(labels) && !PyList_Check(labels)) goto python;
    seq = PySequence_Tuple(labels); /* a copy: __float__ of a label cannot change what is read */
    if (!seq) goto python;
    if (PyTuple_GET_SIZE(seq) > end - *next_label) { /* a list that grew since it was counted */
        Py_DECREF(seq);
        goto python;
    }
    it->nlabels = (int)PyTuple_GET_SIZE(seq);
    it->labels = *next_label;
    for (int k = 0; k < it->nlabels; k++) {
        double v = PyFloat_AsDouble(PyTuple_GET_ITEM(seq, k));
        float f = (float)v;
        if ((v == -1.0 && PyErr_Occurred()) || (isinf(f) && !isinf(v))) { /* struct.pack("f") raises */
            Py_DECREF(seq);
            goto python;
        }
        (*next_label)[k] = f;
    }
    *next_label += it->nlabels;
    Py_DECREF(seq);
    return 0;
python:
    if (PyErr_Occurred() && PyErr_ExceptionMatches(PyExc_MemoryError)) return -1;
    PyErr_Clear();
    it->python = 1;
    it->nlabels = 0;
    return 0;
}

const char imp_pack_batch_doc[] =
             "pack_batch(spec, paths, datas, ids, labels, pack_label, guarded) -> (records, sizes, crcs, images)\n\n"
             "Read (a path) or take (datas[i], when paths[i] is None), transform or pass through, give each\n"
             "image its record header (id, labels) and frame it, for a whole chunk without the GIL.\n"
             "records: the framed records back to back (a read-only buffer, pickled as bytes); sizes: bytes of one native uint32 per item, its\n"
             "framed size, 0 where Python must take that item (see native/batch.c); crcs: one native\n"
             "uint32 per item, the CRC-32 of its framed record (0 where skipped); images: (smallest width,\n"
             "smallest height, images of no known size) of the records made here, as\n"
             "imagesize.SizeRange notes them (-1: none seen).  guarded:\n"
             "open files with O_NOFOLLOW (a symlink is left to Python's root check).";

/* Bytes of records per item in this thread's last chunk: the next chunk's first guess. */
static _Thread_local double per_item;

PyObject *imp_py_pack_batch(PyObject *self, PyObject *args) {
    PyObject *spec_t, *paths, *datas, *ids, *labels, *keep = NULL, *records = NULL, *sizes = NULL, *crcs = NULL,
             *result = NULL;
    int pack_label, guarded;
    bspec s;
    batch b = {0};
    buf out = {0}, in = {0};
    uint32_t *sz, *crc;
    int64_t min_w = -1, min_h = -1, unknown = 0;
    Py_ssize_t total_labels = 0;
    float *next_label;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!O!OO!O!pp:pack_batch", &PyTuple_Type, &spec_t, &PyList_Type, &paths, &datas,
                          &PyList_Type, &ids, &PyList_Type, &labels, &pack_label, &guarded))
        return NULL;
    if (!parse_spec(spec_t, &s)) return NULL;
    b.n = PyList_GET_SIZE(paths);
    if (PyList_GET_SIZE(ids) != b.n || PyList_GET_SIZE(labels) != b.n ||
        (datas != Py_None && (!PyList_Check(datas) || PyList_GET_SIZE(datas) != b.n))) {
        PyErr_SetString(PyExc_ValueError, "pack_batch: paths, datas, ids and labels differ in length");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < b.n; i++) {
        PyObject *l = PyList_GET_ITEM(labels, i);
        total_labels += PyTuple_Check(l) ? PyTuple_GET_SIZE(l) : PyList_Check(l) ? PyList_GET_SIZE(l) : 0;
    }
    keep = PyList_New(0);
    b.items = PyMem_Calloc((size_t)(b.n ? b.n : 1), sizeof(bitem));
    b.views = PyMem_Calloc((size_t)(b.n ? b.n : 1), sizeof(Py_buffer));
    b.labels = PyMem_Calloc((size_t)(total_labels ? total_labels : 1), sizeof(float));
    sizes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(sizeof(uint32_t) * (size_t)b.n));
    crcs = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(sizeof(uint32_t) * (size_t)b.n));
    if (!keep || !b.items || !b.views || !b.labels || !sizes || !crcs) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    next_label = b.labels;
    for (Py_ssize_t i = 0; i < b.n; i++) {
        PyObject *data = datas == Py_None ? NULL : PyList_GET_ITEM(datas, i);
        if (fill_item(&b, i, PyList_GET_ITEM(paths, i), data, PyList_GET_ITEM(ids, i), PyList_GET_ITEM(labels, i),
                      keep, &next_label, b.labels + total_labels) < 0)
            goto done;
    }
    sz = (uint32_t *)PyBytes_AS_STRING(sizes);
    crc = (uint32_t *)PyBytes_AS_STRING(crcs);
    memset(crc, 0, sizeof(uint32_t) * (size_t)b.n);
    if (!crc_ready) crc_init(); /* under the GIL: built once, before any thread reads it */
    if (per_item > 0) { /* room for the chunk at once: growing by doubling copied what was made so far */
        double guess = per_item * (double)b.n * 1.0625 + 4096;
        if (reserve(&out, (size_t)(guess < (16 << 20) ? guess : (16 << 20))) != 0) {
            PyErr_NoMemory();
            goto done;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < b.n; i++) {
        int64_t wh[2] = {-1, -1};
        sz[i] = (uint32_t)one(&b.items[i], &s, pack_label, guarded, &out, &in, &crc[i], wh);
        if (!sz[i]) continue;
        if (wh[0] < 0) { /* imagesize.SizeRange.note(None) */
            unknown++;
            continue;
        }
        min_w = min_w < 0 || wh[0] < min_w ? wh[0] : min_w;
        min_h = min_h < 0 || wh[1] < min_h ? wh[1] : min_h;
    }
    Py_END_ALLOW_THREADS
    if (b.n) per_item = (double)out.len / (double)b.n;
    records = take_records(&out);
    if (!records) goto done;
    result = Py_BuildValue("OOO(LLL)", records, sizes, crcs, (long long)min_w, (long long)min_h, (long long)unknown);
done:
    free(out.data);
    free(in.data);
    free_batch(&b);
    Py_XDECREF(keep);
    Py_XDECREF(records);
    Py_XDECREF(sizes);
    Py_XDECREF(crcs);
    return result;
}

/* ------------------------------------------------------------------------------------------ */
/* decode_batch: verify's decoding, a batch per call */

const char imp_decode_batch_doc[] =
    "decode_batch(images, min_side) -> bytes\n\n"
    "Decode every JPEG of the list in full (warnings are errors) at the largest DCT reduction keeping\n"
    "both sides >= min_side, without the GIL, as decode_luma does one at a time.  Returns four native\n"
    "int32 per image: width, height, components, and 0 -- or a non-zero code where Python must\n"
    "decide (not a JPEG, not decodable here, damaged: imgprep.imaging.decode gives the message).";

PyObject *imp_py_decode_batch(PyObject *self, PyObject *args) {
    PyObject *images, *out = NULL;
    Py_buffer *views;
    Py_ssize_t n, got = 0;
    int min_side;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!i:decode_batch", &PyList_Type, &images, &min_side)) return NULL;
    if (min_side < 1) {
        PyErr_SetString(PyExc_ValueError, "min_side must be positive");
        return NULL;
    }
    n = PyList_GET_SIZE(images);
    views = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Py_buffer));
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(4 * sizeof(int32_t) * (size_t)n));
    if (!views || !out) {
        PyMem_Free(views);
        Py_XDECREF(out);
        return PyErr_NoMemory();
    }
    for (; got < n; got++)
        if (PyObject_GetBuffer(PyList_GET_ITEM(images, got), &views[got], PyBUF_SIMPLE) < 0) {
            Py_CLEAR(out);
            goto done;
        }
    {
        int32_t *res = (int32_t *)PyBytes_AS_STRING(out);
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            const unsigned char *d = views[i].buf;
            size_t len = (size_t)views[i].len;
            imp_luma info;
            unsigned char *luma = NULL;
            char err[IMP_ERRLEN];
            int rc = len >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF
                         ? imp_decode_luma(d, len, min_side, &info, &luma, err)
                         : IMP_EUNSUPPORTED;
            free(luma);
            res[4 * i] = rc == IMP_OK ? info.width : 0;
            res[4 * i + 1] = rc == IMP_OK ? info.height : 0;
            res[4 * i + 2] = rc == IMP_OK ? info.components : 0;
            res[4 * i + 3] = rc == IMP_OK ? 0 : rc;
        }
        Py_END_ALLOW_THREADS
    }
done:
    for (Py_ssize_t i = 0; i < got; i++) PyBuffer_Release(&views[i]);
    PyMem_Free(views);
    return out;
}

/* ------------------------------------------------------------------------------------------ */
/* index_lines: a run's .idx lines (imgprep.formats.recordio.format_index_line), for the writer */

const char imp_index_lines_doc[] =
    "index_lines(keys, sizes, offset) -> bytes\n\n"
    "The .idx lines of consecutive records: '<key>\\t<offset>\\n' for each, the first record at byte\n"
    "offset, each next one sizes[i] bytes further (keys and sizes: lists of non-negative ints).";

PyObject *imp_py_index_lines(PyObject *self, PyObject *args) {
    PyObject *keys, *sizes, *out = NULL;
    unsigned long long offset;
    Py_ssize_t n;
    char *text, *at;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!O!K:index_lines", &PyList_Type, &keys, &PyList_Type, &sizes, &offset)) return NULL;
    n = PyList_GET_SIZE(keys);
    if (PyList_GET_SIZE(sizes) != n) {
        PyErr_SetString(PyExc_ValueError, "index_lines: keys and sizes differ in length");
        return NULL;
    }
    text = PyMem_Malloc((size_t)(n ? n : 1) * 42); /* two 20-digit numbers, a tab, a newline */
    if (!text) return PyErr_NoMemory();
    at = text;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned long long key = PyLong_AsUnsignedLongLong(PyList_GET_ITEM(keys, i));
        unsigned long long size = PyLong_AsUnsignedLongLong(PyList_GET_ITEM(sizes, i));
        if (PyErr_Occurred()) goto done;
        at += sprintf(at, "%llu\t%llu\n", key, offset);
        offset += size;
    }
    out = PyBytes_FromStringAndSize(text, at - text);
done:
    PyMem_Free(text);
    return out;
}
