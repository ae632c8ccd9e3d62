/* Near-duplicate grouping over 64-bit perceptual hashes: multi-index hashing feeding either a
 * union-find (dup_union) or, per hash, the best rank it is confirmed near (dup_lead: the stars the
 * duplicate groups are made of), so no pair list ever exists.
 *
 * The index holds each distinct hash once, sorted (callers collapse identical hashes first).  Its
 * 64 bits are cut into 4 bands of 16; two hashes within t bits agree within r = t / 4 bits on at
 * least one band (pigeonhole), so a query visits, per band, the buckets its band value reaches by
 * flipping at most r bits (137 buckets for r = 2) and compares the whole hash of every entry
 * there.  Each band keeps a copy of the hashes in bucket order (a bucket is one contiguous run);
 * an entry's position in the caller's array is found again by binary search, only for hits.
 * Queries are sorted by the band's key in blocks, so the queries sharing a key meet each bucket
 * entry once, streamed from memory, instead of gathering it once each.  Every hit is merged into
 * the union-find at once (lock-free: a root only ever points to a smaller index, linked by
 * compare-and-swap), so memory is the index (32 bytes per distinct hash) and a fixed query
 * block, however many pairs the data holds.
 *
 * Threads split the key range; the GIL is released for the whole search.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BANDS 4
#define BAND_BITS 16
#define BUCKETS (1u << BAND_BITS)
#define MAX_MASKS 2517 /* sum of C(16, i) for i <= 4: thresholds up to 19 bits */
#define AHEAD 8        /* buckets prefetched ahead of the one being compared */
#define BLOCK (1 << 19) /* queries sorted at a time: 6 MB of scratch, ~8 queries per key */

typedef struct {
    uint32_t *start[BANDS]; /* BUCKETS + 1 offsets per band */
    uint64_t *hash[BANDS];  /* hashes in bucket order (permuted, when perm is set) */
    const uint64_t *sorted; /* the caller's array: position = binary search */
    Py_ssize_t n;
    const uint64_t *perm, *unperm; /* 8 x 256 tables moving bits, or NULL: see permute() */
} mih_index;

/* The same bit permutation applied to every hash and query leaves every distance as it was, but
 * spreads the rarely-changing bits (a photo hash's DC and first harmonics are almost always set)
 * over the bands, so no band's buckets crowd: one table lookup per byte. */
static inline uint64_t permute(const uint64_t *table, uint64_t h) {
    if (!table) return h;
    uint64_t out = 0;
    for (int k = 0; k < 8; k++) out |= table[k * 256 + ((h >> (8 * k)) & 0xff)];
    return out;
}

static int32_t position(const mih_index *ix, uint64_t h) {
    Py_ssize_t lo = 0, hi = ix->n;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (ix->sorted[mid] < h) lo = mid + 1;
        else hi = mid;
    }
    return (int32_t)lo;
}

typedef struct {
    const mih_index *index;
    const uint64_t *qhash;  /* one block of queries, sorted by the band's key */
    const int32_t *qowner;
    const uint32_t *qstart; /* BUCKETS + 1 offsets into the block */
    int32_t *parent;
    const uint16_t *masks;
    int nmasks, threshold, band;
    int symmetric; /* the queries are the index itself, owners the identity: each pair once */
    uint32_t key_lo, key_hi;
    int64_t hits;
    uint64_t *cache_key; /* CACHE recent (hash, position) pairs: a big group's members hit again and again */
    int32_t *cache_pos;
    const uint64_t *qcheck; /* lead mode: each query's confirming hash, sorted with qhash */
    const uint64_t *icheck; /* lead mode: each index position's confirming hash */
    int check_threshold;
    int32_t *lead; /* lead mode: per index position, the smallest rank confirmed near it (else NULL: union) */
    const int32_t *rank; /* lead mode: each index position's rank (the order centres are preferred in) */
} job;

#define CACHE (1u << 15)

static int32_t cached_position(job *j, uint64_t h) {
    uint32_t slot = (uint32_t)((h * 0x9E3779B97F4A7C15ull) >> 49);
    if (j->cache_pos[slot] >= 0 && j->cache_key[slot] == h) return j->cache_pos[slot];
    int32_t at = position(j->index, permute(j->index->unperm, h));
    j->cache_key[slot] = h;
    j->cache_pos[slot] = at;
    return at;
}

static int32_t uf_find(int32_t *parent, int32_t x) {
    for (;;) {
        int32_t p = __atomic_load_n(&parent[x], __ATOMIC_RELAXED);
        if (p == x) return x;
        int32_t g = __atomic_load_n(&parent[p], __ATOMIC_RELAXED);
        if (g != p) /* path halving: g is an ancestor of x whatever other threads did */
            __atomic_compare_exchange_n(&parent[x], &p, g, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
        x = g;
    }
}

static void uf_union(int32_t *parent, int32_t a, int32_t b) {
    for (;;) {
        a = uf_find(parent, a);
        b = uf_find(parent, b);
        if (a == b) return;
        if (a > b) {
            int32_t t = a;
            a = b;
            b = t;
        }
        int32_t expected = b; /* link the larger root under the smaller: no cycle can form */
        if (__atomic_compare_exchange_n(&parent[b], &expected, a, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) return;
    }
}

/* lead[x] = min(lead[x], y), lock-free: the result is the same whatever order threads run in. */
static void lead_min(int32_t *lead, int32_t x, int32_t y) {
    int32_t cur = __atomic_load_n(&lead[x], __ATOMIC_RELAXED);
    while (y < cur && !__atomic_compare_exchange_n(&lead[x], &cur, y, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

static int make_masks(int radius, uint16_t *out) {
    int n = 0;
    for (uint32_t m = 0; m < BUCKETS; m++)
        if (__builtin_popcount(m) <= radius) out[n++] = (uint16_t)m;
    return n;
}

/* Queries sharing a band key probe the same buckets: each bucket entry is loaded once and
 * compared with all of them, so the index is streamed, not gathered. */
#define QUERY_BODY(POPCOUNT)                                                                    \
    const uint32_t *start = j->index->start[j->band];                                           \
    const uint64_t *hs = j->index->hash[j->band];                                               \
    int64_t hits = 0;                                                                           \
    for (uint32_t key = j->key_lo; key < j->key_hi; key++) {                                    \
        uint32_t q0 = j->qstart[key], q1 = j->qstart[key + 1];                                  \
        if (q0 == q1) continue;                                                                 \
        for (int k = 0; k < j->nmasks; k++) {                                                   \
            uint32_t bucket = key ^ j->masks[k];                                                \
            if (k + AHEAD < j->nmasks) __builtin_prefetch(hs + start[key ^ j->masks[k + AHEAD]]); \
            if (j->symmetric && bucket < key) continue; /* met from the other bucket's side */  \
            int same = j->symmetric && bucket == key;                                           \
            for (uint32_t e = start[bucket], end = start[bucket + 1]; e < end; e++) {           \
                uint64_t he = hs[e];                                                            \
                for (uint32_t q = q0; q < q1; q++) {                                            \
                    if (POPCOUNT(j->qhash[q] ^ he) <= j->threshold && (!same || he > j->qhash[q])) { \
                        int32_t other = cached_position(j, he);                                 \
                        if (other != j->qowner[q] && (!j->lead ||                               \
                            POPCOUNT(j->qcheck[q] ^ j->icheck[other]) <= j->check_threshold)) { \
                            hits++;                                                             \
                            if (j->lead) {                                                      \
                                lead_min(j->lead, j->qowner[q], j->rank[other]);                \
                                lead_min(j->lead, other, j->rank[j->qowner[q]]);                \
                            } else {                                                            \
                                uf_union(j->parent, j->qowner[q], other);                       \
                            }                                                                   \
                        }                                                                       \
                    }                                                                           \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
    j->hits += hits;

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("popcnt"))) static void run_popcnt(job *j) { QUERY_BODY(__builtin_popcountll) }
#endif
static void run_plain(job *j) { QUERY_BODY(__builtin_popcountll) }

static void run(job *j) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("popcnt")) {
        run_popcnt(j);
        return;
    }
#endif
    run_plain(j);
}

/* Threads come from CPython's own thread API, not pthread_create: glibc >= 2.34 binds that to
 * pthread_create@GLIBC_2.34, which would lift the repaired wheel from manylinux2014 to
 * manylinux_2_34.  They never touch a Python object; each releases its lock when done (the join). */
typedef struct {
    job *j;
    PyThread_type_lock done;
} runner;

static void run_thread(void *arg) {
    runner *r = (runner *)arg;
    run(r->j);
    PyThread_release_lock(r->done);
}

static void free_index(mih_index *ix) {
    for (int b = 0; b < BANDS; b++) {
        free(ix->start[b]);
        free(ix->hash[b]);
    }
}

static int build_index(const uint64_t *hashes, Py_ssize_t n, mih_index *ix, const uint64_t *perm,
                       const uint64_t *unperm) {
    memset(ix, 0, sizeof *ix);
    ix->sorted = hashes;
    ix->n = n;
    ix->perm = perm;
    ix->unperm = unperm;
    uint32_t *fill = malloc(BUCKETS * sizeof *fill);
    if (!fill) return -1;
    for (int b = 0; b < BANDS; b++) {
        uint32_t *start = calloc(BUCKETS + 1, sizeof *start);
        uint64_t *hs = malloc((size_t)(n ? n : 1) * sizeof *hs);
        ix->start[b] = start;
        ix->hash[b] = hs;
        if (!start || !hs) {
            free(fill);
            return -1;
        }
        for (Py_ssize_t i = 0; i < n; i++) start[((permute(perm, hashes[i]) >> (b * BAND_BITS)) & (BUCKETS - 1)) + 1]++;
        for (uint32_t k = 0; k < BUCKETS; k++) start[k + 1] += start[k];
        memcpy(fill, start, BUCKETS * sizeof *fill);
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t h = permute(perm, hashes[i]);
            hs[fill[(h >> (b * BAND_BITS)) & (BUCKETS - 1)]++] = h;
        }
    }
    free(fill);
    return 0;
}

/* Queries go through in blocks (bounded scratch), each sorted by every band's key in turn. */
/* owners NULL: each query is its own owner (the index searched against itself) */
#define OWNER(q) (owners ? owners[(q) / per] : (int32_t)(q))

typedef struct {
    const uint64_t *qcheck, *icheck; /* NULL: union mode */
    int check_threshold;
    int32_t *lead;
    const int32_t *rank;
} lead_args;

static int search(const mih_index *ix, const uint64_t *queries, const int32_t *owners, Py_ssize_t per,
                  Py_ssize_t nq, int32_t *parent, const uint16_t *masks, int nmasks, int threshold, int threads,
                  int symmetric, int64_t *hits, const lead_args *la) {
    Py_ssize_t block = nq < BLOCK ? nq : BLOCK;
    uint64_t *qhash = malloc((size_t)(block ? block : 1) * sizeof *qhash);
    uint64_t *qcheck = la->lead ? malloc((size_t)(block ? block : 1) * sizeof *qcheck) : NULL;
    int32_t *qowner = malloc((size_t)(block ? block : 1) * sizeof *qowner);
    uint32_t *qstart = malloc((BUCKETS + 1) * sizeof *qstart);
    uint32_t *fill = malloc(BUCKETS * sizeof *fill);
    int failed = !qhash || !qowner || !qstart || !fill || (la->lead && !qcheck);
    job jobs[64];
    runner runners[64];
    PyThread_type_lock locks[64] = {0};
    for (int t = 1; t < threads; t++) locks[t] = PyThread_allocate_lock();
    uint64_t *cache_key = failed ? NULL : malloc((size_t)threads * CACHE * sizeof *cache_key);
    int32_t *cache_pos = failed ? NULL : malloc((size_t)threads * CACHE * sizeof *cache_pos);
    failed = failed || !cache_key || !cache_pos;
    if (!failed) memset(cache_pos, 0xff, (size_t)threads * CACHE * sizeof *cache_pos); /* -1: empty */
    for (Py_ssize_t lo = 0; !failed && lo < nq; lo += block) {
        Py_ssize_t hi = lo + block < nq ? lo + block : nq;
        for (int b = 0; b < BANDS; b++) {
            memset(qstart, 0, (BUCKETS + 1) * sizeof *qstart);
            for (Py_ssize_t q = lo; q < hi; q++)
                if (OWNER(q) >= 0)
                    qstart[((permute(ix->perm, queries[q]) >> (b * BAND_BITS)) & (BUCKETS - 1)) + 1]++;
            for (uint32_t k = 0; k < BUCKETS; k++) qstart[k + 1] += qstart[k];
            memcpy(fill, qstart, BUCKETS * sizeof *fill);
            for (Py_ssize_t q = lo; q < hi; q++) {
                if (OWNER(q) < 0) continue; /* a row with nothing to query (flat, small) */
                uint64_t h = permute(ix->perm, queries[q]);
                uint32_t slot = fill[(h >> (b * BAND_BITS)) & (BUCKETS - 1)]++;
                qhash[slot] = h;
                qowner[slot] = OWNER(q);
                if (qcheck) qcheck[slot] = la->qcheck[q];
            }
            int started = 0;
            for (int t = 0; t < threads; t++)
                jobs[t] = (job){ix, qhash, qowner, qstart, parent, masks, nmasks, threshold, b, symmetric,
                                (uint32_t)((uint64_t)BUCKETS * t / threads),
                                (uint32_t)((uint64_t)BUCKETS * (t + 1) / threads), 0,
                                cache_key + (size_t)t * CACHE, cache_pos + (size_t)t * CACHE, qcheck, la->icheck,
                                la->check_threshold, la->lead, la->rank};
            for (int t = 1; t < threads; t++) {
                runners[t] = (runner){&jobs[t], locks[t]};
                if (!locks[t] || !PyThread_acquire_lock(locks[t], NOWAIT_LOCK)) break;
                if (PyThread_start_new_thread(run_thread, &runners[t]) == PYTHREAD_INVALID_THREAD_ID) {
                    PyThread_release_lock(locks[t]);
                    break;
                }
                started = t;
            }
            for (int t = started + 1; t < threads; t++) run(&jobs[t]); /* threads that could not start */
            run(&jobs[0]);
            for (int t = 1; t <= started; t++) { /* join: each thread's lock is released when it is done */
                PyThread_acquire_lock(locks[t], WAIT_LOCK);
                PyThread_release_lock(locks[t]);
            }
            for (int t = 0; t < threads; t++) *hits += jobs[t].hits;
        }
    }
    free(qhash);
    free(qcheck);
    free(qowner);
    free(qstart);
    free(fill);
    free(cache_key);
    free(cache_pos);
    for (int t = 1; t < threads; t++)
        if (locks[t]) PyThread_free_lock(locks[t]);
    return failed;
}

/* dup_union(index, queries, owners, parent, threshold, threads) -> hits
 *
 * index: distinct uint64 hashes, ascending; queries: uint64 hashes; owners: int32 index position of
 * each query's own image, one per query or one per run of len(queries) / len(owners) queries (a
 * row's crop windows), negative for none; parent: the int32 union-find array over the index
 * (parent[i] <= i), updated in place: every query within threshold bits of an index hash joins
 * its owner's set.  symmetric (optional): the queries are the index itself, each its own owner,
 * so each pair is compared from one side only (half the work).  Returns the number of hits merged
 * (pairs seen, never stored).  The GIL is released throughout. */
static int get(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t item, const char *what) {
    if (PyObject_GetBuffer(obj, view, writable ? PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS : PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    if (view->len % item) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_ValueError, "%s: buffer length is not a multiple of %zd", what, item);
        return -1;
    }
    return 0;
}

PyObject *imp_py_dup_union(PyObject *self, PyObject *args) {
    PyObject *o_index, *o_queries, *o_owners, *o_parent;
    int threshold, threads, symmetric = 0;
    Py_buffer vi, vq, vo, vp;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOii|p:dup_union", &o_index, &o_queries, &o_owners, &o_parent, &threshold,
                          &threads, &symmetric))
        return NULL;
    if (threshold < 0 || threshold > 4 * BANDS + 3) return PyErr_Format(PyExc_ValueError, "threshold out of range");
    if (get(o_index, &vi, 0, 8, "index") < 0) return NULL;
    if (get(o_queries, &vq, 0, 8, "queries") < 0) goto fail_i;
    if (get(o_owners, &vo, 0, 4, "owners") < 0) goto fail_q;
    if (get(o_parent, &vp, 1, 4, "parent") < 0) goto fail_o;
    Py_ssize_t n = vi.len / 8, nq = vq.len / 8, no = vo.len / 4;
    if (no == 0 || nq % no || vp.len / 4 != n || n > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "owners must divide queries and parent must match index");
        goto fail_p;
    }
    const int32_t *owners = vo.buf;
    for (Py_ssize_t q = 0; q < no; q++)
        if (owners[q] >= n) {
            PyErr_SetString(PyExc_ValueError, "an owner is outside the index");
            goto fail_p;
        }
    if (symmetric) { /* each pair is compared once: only right if the queries are the index, owned by itself */
        int ok = nq == n && no == n && memcmp(vq.buf, vi.buf, (size_t)n * 8) == 0;
        for (Py_ssize_t i = 0; ok && i < n; i++) ok = owners[i] == i;
        if (!ok) {
            PyErr_SetString(PyExc_ValueError, "symmetric: the queries must be the index and each its own owner");
            goto fail_p;
        }
    }
    const uint64_t *sorted = vi.buf;
    for (Py_ssize_t i = 1; i < n; i++)
        if (sorted[i - 1] >= sorted[i]) {
            PyErr_SetString(PyExc_ValueError, "index must be distinct hashes in ascending order");
            goto fail_p;
        }
    const int32_t *par = vp.buf;
    for (Py_ssize_t i = 0; i < n; i++)
        if (par[i] < 0 || par[i] > i) {
            PyErr_SetString(PyExc_ValueError, "parent must point to smaller indices");
            goto fail_p;
        }
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    int64_t hits = 0;
    int failed = 0;
    uint16_t masks[MAX_MASKS];
    mih_index ix;
    Py_BEGIN_ALLOW_THREADS
    int nmasks = make_masks(threshold / BANDS, masks);
    if (build_index(vi.buf, n, &ix, NULL, NULL) < 0) {
        failed = 1;
    } else {
        lead_args none = {NULL, NULL, 0, NULL, NULL};
        failed = search(&ix, vq.buf, owners, nq / no, nq, vp.buf, masks, nmasks, threshold, threads, symmetric,
                        &hits, &none);
    }
    free_index(&ix);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&vp);
    PyBuffer_Release(&vo);
    PyBuffer_Release(&vq);
    PyBuffer_Release(&vi);
    if (failed) return PyErr_NoMemory();
    return PyLong_FromLongLong(hits);
fail_p:
    PyBuffer_Release(&vp);
fail_o:
    PyBuffer_Release(&vo);
fail_q:
    PyBuffer_Release(&vq);
fail_i:
    PyBuffer_Release(&vi);
    return NULL;
}

/* dup_lead(index, icheck, rank, queries, qcheck, owners, lead, threshold, check_threshold, threads[, symmetric])
 *
 * dup_union's search, but a hit counts only when the confirming hashes (icheck per index position,
 * qcheck per query) are also within check_threshold bits, and instead of joining sets it keeps,
 * per index position, the smallest rank it is confirmed near: lead[x] = min(lead[x], rank[y]) both
 * ways (lead starts as the caller gives it, normally rank itself).  Returns the hits.  Groups built from lead are
 * stars around a centre, never chains; the result does not depend on the number of threads. */
PyObject *imp_py_dup_lead(PyObject *self, PyObject *args) {
    PyObject *o_index, *o_icheck, *o_rank, *o_queries, *o_qcheck, *o_owners, *o_lead;
    int threshold, check_threshold, threads, symmetric = 0;
    Py_buffer vi, vic, vr, vq, vqc, vo, vl, vperm = {0}, vunperm = {0};
    PyObject *o_perm = Py_None, *o_unperm = Py_None;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOOOOiii|pOO:dup_lead", &o_index, &o_icheck, &o_rank, &o_queries, &o_qcheck,
                          &o_owners, &o_lead, &threshold, &check_threshold, &threads, &symmetric, &o_perm,
                          &o_unperm))
        return NULL;
    if ((o_perm == Py_None) != (o_unperm == Py_None))
        return PyErr_Format(PyExc_ValueError, "perm and unperm come together");
    if (o_perm != Py_None) {
        if (get(o_perm, &vperm, 0, 8, "perm") < 0) return NULL;
        if (get(o_unperm, &vunperm, 0, 8, "unperm") < 0) {
            PyBuffer_Release(&vperm);
            return NULL;
        }
        if (vperm.len != 8 * 256 * 8 || vunperm.len != 8 * 256 * 8) {
            PyBuffer_Release(&vperm);
            PyBuffer_Release(&vunperm);
            return PyErr_Format(PyExc_ValueError, "perm and unperm are 8 x 256 uint64 tables");
        }
    }
    const uint64_t *perm = o_perm != Py_None ? vperm.buf : NULL, *unperm = o_perm != Py_None ? vunperm.buf : NULL;
    if (threshold < 0 || threshold > 4 * BANDS + 3) return PyErr_Format(PyExc_ValueError, "threshold out of range");
    if (get(o_index, &vi, 0, 8, "index") < 0) goto fail_none;
    if (get(o_icheck, &vic, 0, 8, "icheck") < 0) goto fail_i;
    if (get(o_rank, &vr, 0, 4, "rank") < 0) goto fail_ic;
    if (get(o_queries, &vq, 0, 8, "queries") < 0) goto fail_r;
    if (get(o_qcheck, &vqc, 0, 8, "qcheck") < 0) goto fail_q;
    int own_self = o_owners == Py_None; /* each query its own owner: symmetric only */
    if (own_self) {
        memset(&vo, 0, sizeof vo);
    } else if (get(o_owners, &vo, 0, 4, "owners") < 0) {
        goto fail_qc;
    }
    if (get(o_lead, &vl, 1, 4, "lead") < 0) goto fail_o;
    Py_ssize_t n = vi.len / 8, nq = vq.len / 8, no = own_self ? nq : vo.len / 4;
    if (no == 0 || nq % no || vl.len / 4 != n || vic.len / 8 != n || vr.len / 4 != n || vqc.len / 8 != nq ||
        n > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "owners must divide queries; lead and icheck match index, qcheck queries");
        goto fail_l;
    }
    const int32_t *owners = own_self ? NULL : vo.buf;
    if (own_self && !symmetric) {
        PyErr_SetString(PyExc_ValueError, "owners may be None only when symmetric");
        goto fail_l;
    }
    for (Py_ssize_t q = 0; owners && q < no; q++)
        if (owners[q] >= n) {
            PyErr_SetString(PyExc_ValueError, "an owner is outside the index");
            goto fail_l;
        }
    if (symmetric) {
        int ok = nq == n && no == n && memcmp(vq.buf, vi.buf, (size_t)n * 8) == 0 &&
                 memcmp(vqc.buf, vic.buf, (size_t)n * 8) == 0;
        for (Py_ssize_t i = 0; ok && owners && i < n; i++) ok = owners[i] == i;
        if (!ok) {
            PyErr_SetString(PyExc_ValueError, "symmetric: the queries must be the index and each its own owner");
            goto fail_l;
        }
    }
    const uint64_t *sorted = vi.buf;
    for (Py_ssize_t i = 1; i < n; i++)
        if (sorted[i - 1] >= sorted[i]) {
            PyErr_SetString(PyExc_ValueError, "index must be distinct hashes in ascending order");
            goto fail_l;
        }
    const int32_t *rk = vr.buf;
    for (Py_ssize_t i = 0; i < n; i++)
        if (rk[i] < 0) {
            PyErr_SetString(PyExc_ValueError, "ranks must not be negative");
            goto fail_l;
        }
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    int64_t hits = 0;
    int failed = 0;
    uint16_t masks[MAX_MASKS];
    mih_index ix;
    Py_BEGIN_ALLOW_THREADS
    int nmasks = make_masks(threshold / BANDS, masks);
    if (build_index(vi.buf, n, &ix, perm, unperm) < 0) {
        failed = 1;
    } else {
        lead_args la = {vqc.buf, vic.buf, check_threshold, vl.buf, vr.buf};
        failed = search(&ix, vq.buf, owners, nq / no, nq, NULL, masks, nmasks, threshold, threads, symmetric, &hits,
                        &la);
    }
    free_index(&ix);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&vl);
    if (!own_self) PyBuffer_Release(&vo);
    PyBuffer_Release(&vqc);
    PyBuffer_Release(&vq);
    PyBuffer_Release(&vr);
    PyBuffer_Release(&vic);
    PyBuffer_Release(&vi);
    if (perm) {
        PyBuffer_Release(&vperm);
        PyBuffer_Release(&vunperm);
    }
    if (failed) return PyErr_NoMemory();
    return PyLong_FromLongLong(hits);
fail_l:
    PyBuffer_Release(&vl);
fail_o:
    if (!own_self) PyBuffer_Release(&vo);
fail_qc:
    PyBuffer_Release(&vqc);
fail_q:
    PyBuffer_Release(&vq);
fail_r:
    PyBuffer_Release(&vr);
fail_ic:
    PyBuffer_Release(&vic);
fail_i:
    PyBuffer_Release(&vi);
fail_none:
    if (perm) {
        PyBuffer_Release(&vperm);
        PyBuffer_Release(&vunperm);
    }
    return NULL;
}
