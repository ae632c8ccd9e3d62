/* Near-duplicate grouping over 64-bit perceptual hashes: multi-index hashing feeding either a
 * union-find (dup_union) or, per hash, the best rank it is confirmed near (dup_lead: the stars the
 * duplicate groups are made of), so no pair list ever exists.
 *
 * The index holds each distinct hash once, sorted (callers collapse identical hashes first).  The
 * caller's plan permutes the 64 bits and cuts them into bands: band i is a run of bits, of which
 * the first key_i are its table's key, searched within radius_i bits.  Two hashes within t bits
 * differ in more than radius_i bits on every band only if sum(radius_i + 1) <= t, so a plan with
 * sum(radius_i + 1) > t finds every pair (generalised pigeonhole; the key is part of the band, so
 * it is within the radius too).  Bands can therefore be long where the data is rich (2^21 buckets
 * for a million hashes: a bucket holds about one entry however many images there are) and short
 * or unkeyed where its bits hardly change; the plan (imgprep/splits/neardup.py) weighs the
 * buckets visited against the entries compared with the data's own bit frequencies.
 *
 * One band's table exists at a time (8 bytes per hash plus its bucket offsets): the queries are
 * streamed past it in blocks sorted by the band's key, so queries sharing a key meet each bucket
 * entry once.  An entry's position in the caller's array is found again by binary search, only
 * for hits.  Every hit is merged at once (a lock-free union-find, or a lock-free minimum), so
 * memory is one band's table and a fixed query block, however many pairs the data holds.
 *
 * What grows with the index is the comparisons in the buckets (entries per bucket), not the
 * memory traffic: walking a tile of keys once per flip mask, so each mask reads one contiguous
 * stretch of the table, was no faster, and comparing 32-bit halves sixteen at a time was slower
 * (the entries that pass fetch their other half).  docs/dedup-search.md has the measurements.
 *
 * Threads take key ranges from a shared counter; the GIL is released for the whole search, and
 * every result (minima, set unions, hit counts) is the same whatever order the threads run in.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BANDS 16
#define MAX_KEY 22      /* 2^22 buckets: 16 MB of offsets */
#define MAX_MASKS 4096  /* probes per key and band */
#define AHEAD 8         /* probes prefetched ahead of the one being compared */
#define BLOCK (1 << 19) /* queries sorted at a time: 6 MB of scratch */
#define CHUNKS 64       /* key ranges per thread: late ones even out a loaded core */

typedef struct {
    int off, len, key, radius;
} band_spec;

typedef struct {
    const uint64_t *sorted; /* the caller's array: position = binary search */
    Py_ssize_t n;
    const uint64_t *perm, *unperm; /* 8 x 256 tables moving bits, or NULL: see permute() */
    uint32_t *start;               /* the current band: 2^key + 1 offsets */
    uint64_t *hash;                /* the current band: permuted hashes in bucket order */
    int off, key;
} mih_index;

/* The same bit permutation applied to every hash and query leaves every distance as it was; it
 * gathers the bits each band keys on into one run: one table lookup per byte. */
static inline uint64_t permute(const uint64_t *table, uint64_t h) {
    if (!table) return h;
    uint64_t out = 0;
    for (int k = 0; k < 8; k++) out |= table[k * 256 + ((h >> (8 * k)) & 0xff)];
    return out;
}

static inline uint32_t band_key(const mih_index *ix, uint64_t h) {
    return (uint32_t)((h >> ix->off) & ((1ull << ix->key) - 1));
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
    const uint64_t *qcheck, *icheck; /* NULL: union mode */
    int check_threshold;
    int32_t *lead;
    const int32_t *rank;
    const uint32_t *qchroma, *ichroma; /* NULL: no colour check */
    int chroma_threshold;
} lead_args;

/* Bits apart of two chroma words per 32 compared (phash.chroma_distance): 16 per colour channel, a
 * channel counted only when known (not 0xFFFF) on both sides, one channel's distance doubled. */
static inline int chroma_bits(uint32_t a, uint32_t b) {
    int d = 0, channels = 0;
    for (int shift = 16; shift >= 0; shift -= 16) {
        uint32_t x = (a >> shift) & 0xFFFFu, y = (b >> shift) & 0xFFFFu;
        if (x != 0xFFFFu && y != 0xFFFFu) d += __builtin_popcount(x ^ y), channels++;
    }
    return channels == 1 ? 2 * d : d;
}

typedef struct {
    const mih_index *index;
    const uint64_t *qhash;  /* one block of queries (permuted), sorted by the band's key */
    const uint32_t *qid;    /* each one's number among all queries */
    const uint32_t *qstart; /* 2^key + 1 offsets into the block */
    const int32_t *owners;  /* NULL: each query its own owner */
    Py_ssize_t per;
    int32_t *parent;
    const uint32_t *masks;
    int nmasks, threshold, symmetric; /* symmetric: the queries are the index itself: each pair once */
    const lead_args *la;
    uint32_t nkeys, chunk;
    uint32_t *next; /* the next key range to take (shared) */
    int64_t hits;
    int simd; /* the AVX-512 scan may run (IMGPREP_DUP_SIMD=0 turns it off: tests run both) */
    uint64_t *cache_key; /* CACHE recent (hash, position) pairs: a big group's members hit again and again */
    int32_t *cache_pos;
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

/* Every key-bit mask of at most radius bits, fewest bits first; -1 if there are more than MAX_MASKS. */
static int make_masks(int bits, int radius, uint32_t *out) {
    int n = 0;
    for (int r = 0; r <= radius && r <= bits; r++)
        for (uint64_t m = 0; m < (1ull << bits); m++)
            if (__builtin_popcountll(m) == r) {
                if (n == MAX_MASKS) return -1;
                out[n++] = (uint32_t)m;
            }
    return n;
}

/* A hit: the whole hashes are within the threshold; the check hashes (lead mode) must agree too. */
static inline void hit(job *j, uint32_t q, uint64_t he, int64_t *hits) {
    int32_t other = cached_position(j, he);
    int32_t mine = j->owners ? j->owners[q / j->per] : (int32_t)q;
    if (other == mine) return;
    const lead_args *la = j->la;
    if (la->lead) {
        if (__builtin_popcountll(la->qcheck[q] ^ la->icheck[other]) > la->check_threshold) return;
        if (la->qchroma && chroma_bits(la->qchroma[q], la->ichroma[other]) > la->chroma_threshold) return;
        lead_min(la->lead, mine, la->rank[other]);
        lead_min(la->lead, other, la->rank[mine]);
    } else {
        uf_union(j->parent, mine, other);
    }
    (*hits)++;
}

/* Queries sharing a band key probe the same buckets: each bucket is loaded once and compared
 * with all of them.  Offsets are prefetched two strides ahead, entries one. */
#define QUERY_BODY(SCAN)                                                                        \
    const uint32_t *start = j->index->start;                                                    \
    const uint64_t *hs = j->index->hash;                                                        \
    const uint32_t *masks = j->masks;                                                           \
    int nm = j->nmasks, t = j->threshold;                                                       \
    int64_t hits = 0;                                                                           \
    for (;;) {                                                                                  \
        uint32_t lo = __atomic_fetch_add(j->next, j->chunk, __ATOMIC_RELAXED);                  \
        if (lo >= j->nkeys) break;                                                              \
        uint32_t hi = lo + j->chunk < j->nkeys ? lo + j->chunk : j->nkeys;                      \
        for (uint32_t key = lo; key < hi; key++) {                                              \
            uint32_t q0 = j->qstart[key], q1 = j->qstart[key + 1];                              \
            if (q0 == q1) continue;                                                             \
            for (int k = 0; k < nm && k < 2 * AHEAD; k++) __builtin_prefetch(start + (key ^ masks[k])); \
            for (int k = 0; k < nm; k++) {                                                      \
                if (k + 2 * AHEAD < nm) __builtin_prefetch(start + (key ^ masks[k + 2 * AHEAD])); \
                if (k + AHEAD < nm) __builtin_prefetch(hs + start[key ^ masks[k + AHEAD]]);     \
                uint32_t bucket = key ^ masks[k];                                               \
                if (j->symmetric && bucket < key) continue; /* met from the other bucket's side */ \
                int same = j->symmetric && bucket == key;                                       \
                uint32_t s0 = start[bucket], s1 = start[bucket + 1];                            \
                SCAN                                                                            \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
    j->hits += hits;

/* symmetric, same bucket: each pair once, from the smaller hash's side */
#define SCAN_PLAIN                                                                              \
    for (uint32_t e = s0; e < s1; e++) {                                                        \
        uint64_t he = hs[e];                                                                    \
        for (uint32_t q = q0; q < q1; q++)                                                      \
            if (__builtin_popcountll(j->qhash[q] ^ he) <= t && (!same || he > j->qhash[q]))     \
                hit(j, j->qid[q], he, &hits);                                                   \
    }

static void run_plain(job *j) { QUERY_BODY(SCAN_PLAIN) }

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("popcnt"))) static void run_popcnt(job *j) { QUERY_BODY(SCAN_PLAIN) }

/* Eight entries per load, compared with every query of the key: xor, popcount, compare. */
#define SCAN_AVX512                                                                             \
    for (uint32_t e = s0; e < s1; e += 8) {                                                     \
        __mmask8 lm = s1 - e >= 8 ? 0xff : (__mmask8)((1u << (s1 - e)) - 1);                    \
        __m512i ev = _mm512_maskz_loadu_epi64(lm, hs + e), tv = _mm512_set1_epi64(t);           \
        for (uint32_t q = q0; q < q1; q++) {                                                    \
            __m512i x = _mm512_xor_si512(ev, _mm512_set1_epi64((long long)j->qhash[q]));        \
            __mmask8 near = _mm512_mask_cmple_epu64_mask(lm, _mm512_popcnt_epi64(x), tv);       \
            while (__builtin_expect(near != 0, 0)) {                                            \
                uint64_t he = hs[e + (uint32_t)__builtin_ctz(near)];                            \
                near &= (__mmask8)(near - 1);                                                   \
                if (!same || he > j->qhash[q]) hit(j, j->qid[q], he, &hits);                    \
            }                                                                                   \
        }                                                                                       \
    }

__attribute__((target("popcnt,avx512f,avx512vpopcntdq"))) static void run_avx512(job *j) {
    QUERY_BODY(SCAN_AVX512)
}
#endif

static void run(job *j) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (j->simd && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vpopcntdq")) {
        run_avx512(j);
        return;
    }
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

/* Counting sort of n items by key into slot order: start gets 2^key + 1 offsets. */
static void count_keys(uint32_t *start, uint32_t nkeys) {
    for (uint32_t k = 0; k < nkeys; k++) start[k + 1] += start[k];
}

/* After placing item i at start[key]++, start[key] holds the next bucket's start: shift back. */
static void unshift(uint32_t *start, uint32_t nkeys) {
    memmove(start + 1, start, (size_t)nkeys * sizeof *start);
    start[0] = 0;
}

/* The table of one band: the permuted hashes in bucket order. */
static void build_band(mih_index *ix, const band_spec *b) {
    uint32_t nkeys = 1u << b->key;
    ix->off = b->off;
    ix->key = b->key;
    memset(ix->start, 0, ((size_t)nkeys + 1) * sizeof *ix->start);
    for (Py_ssize_t i = 0; i < ix->n; i++) ix->start[band_key(ix, permute(ix->perm, ix->sorted[i])) + 1]++;
    count_keys(ix->start, nkeys);
    for (Py_ssize_t i = 0; i < ix->n; i++) {
        uint64_t h = permute(ix->perm, ix->sorted[i]);
        ix->hash[ix->start[band_key(ix, h)]++] = h;
    }
    unshift(ix->start, nkeys);
}

typedef struct {
    const uint64_t *queries;
    const int32_t *owners; /* NULL: each query its own owner (the index searched against itself) */
    Py_ssize_t per, nq;
    int32_t *parent;
    int threshold, threads, symmetric;
    const band_spec *bands;
    int nbands;
    const lead_args *la;
} search_args;

#define OWNER(q) (s->owners ? s->owners[(q) / s->per] : (int32_t)(q))

/* Run the jobs on s->threads threads (the calling one included) and add up their hits. */
static void run_jobs(job *jobs, int threads, PyThread_type_lock *locks, int64_t *hits) {
    runner runners[64];
    int started = 0;
    for (int t = 1; t < threads; t++) {
        runners[t] = (runner){&jobs[t], locks[t]};
        if (!locks[t] || !PyThread_acquire_lock(locks[t], NOWAIT_LOCK)) break;
        if (PyThread_start_new_thread(run_thread, &runners[t]) == PYTHREAD_INVALID_THREAD_ID) {
            PyThread_release_lock(locks[t]);
            break;
        }
        started = t;
    }
    run(&jobs[0]); /* takes what threads that could not start would have taken */
    for (int t = 1; t <= started; t++) { /* join: each thread's lock is released when it is done */
        PyThread_acquire_lock(locks[t], WAIT_LOCK);
        PyThread_release_lock(locks[t]);
    }
    for (int t = 0; t < threads; t++) *hits += jobs[t].hits;
}

/* One band at a time: build its table, then stream every query block past it. */
static int search(mih_index *ix, const search_args *s, int64_t *hits) {
    int maxkey = 0;
    for (int b = 0; b < s->nbands; b++) maxkey = s->bands[b].key > maxkey ? s->bands[b].key : maxkey;
    size_t nstart = ((size_t)1 << maxkey) + 1;
    Py_ssize_t block = s->nq < BLOCK ? s->nq : BLOCK;
    int threads = s->threads;
    const char *simd = getenv("IMGPREP_DUP_SIMD");
    ix->start = malloc(nstart * sizeof *ix->start);
    ix->hash = malloc((size_t)(ix->n ? ix->n : 1) * sizeof *ix->hash);
    uint64_t *qhash = malloc((size_t)(block ? block : 1) * sizeof *qhash);
    uint32_t *qid = malloc((size_t)(block ? block : 1) * sizeof *qid);
    uint32_t *qstart = malloc(nstart * sizeof *qstart);
    uint32_t *masks = malloc(MAX_MASKS * sizeof *masks);
    uint64_t *cache_key = malloc((size_t)threads * CACHE * sizeof *cache_key);
    int32_t *cache_pos = malloc((size_t)threads * CACHE * sizeof *cache_pos);
    PyThread_type_lock locks[64] = {0};
    for (int t = 1; t < threads; t++) locks[t] = PyThread_allocate_lock();
    int failed = !ix->start || !ix->hash || !qhash || !qid || !qstart || !masks || !cache_key || !cache_pos;
    if (!failed) memset(cache_pos, 0xff, (size_t)threads * CACHE * sizeof *cache_pos); /* -1: empty */
    for (int b = 0; !failed && b < s->nbands; b++) {
        const band_spec *spec = &s->bands[b];
        int nmasks = make_masks(spec->key, spec->radius, masks);
        build_band(ix, spec);
        uint32_t nkeys = 1u << spec->key;
        for (Py_ssize_t lo = 0; lo < s->nq; lo += block) {
            Py_ssize_t hi = lo + block < s->nq ? lo + block : s->nq;
            memset(qstart, 0, ((size_t)nkeys + 1) * sizeof *qstart);
            for (Py_ssize_t q = lo; q < hi; q++)
                if (OWNER(q) >= 0) qstart[band_key(ix, permute(ix->perm, s->queries[q])) + 1]++;
            count_keys(qstart, nkeys);
            for (Py_ssize_t q = lo; q < hi; q++) {
                if (OWNER(q) < 0) continue; /* a row with nothing to query (flat, small) */
                uint64_t h = permute(ix->perm, s->queries[q]);
                uint32_t slot = qstart[band_key(ix, h)]++;
                qhash[slot] = h;
                qid[slot] = (uint32_t)q;
            }
            unshift(qstart, nkeys);
            uint32_t next = 0, chunk = nkeys / ((uint32_t)threads * CHUNKS);
            job jobs[64];
            for (int t = 0; t < threads; t++)
                jobs[t] = (job){ix, qhash, qid, qstart, s->owners, s->per, s->parent, masks, nmasks, s->threshold,
                                s->symmetric, s->la, nkeys, chunk ? chunk : 1, &next, 0, !simd || strcmp(simd, "0"),
                                cache_key + (size_t)t * CACHE, cache_pos + (size_t)t * CACHE};
            run_jobs(jobs, threads, locks, hits);
        }
    }
    free(ix->start);
    free(ix->hash);
    free(qhash);
    free(qid);
    free(qstart);
    free(masks);
    free(cache_key);
    free(cache_pos);
    for (int t = 1; t < threads; t++)
        if (locks[t]) PyThread_free_lock(locks[t]);
    return failed;
}

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

/* The plan: perm and unperm (8 x 256 uint64 tables, or both None) and bands (int32, 4 per band:
 * offset, length, key bits, radius), checked so that no pair within threshold bits can be missed. */
typedef struct {
    Py_buffer perm, unperm;
    int has_perm;
    band_spec bands[MAX_BANDS];
    int nbands;
} plan;

static void release_plan(plan *p) {
    if (p->has_perm) {
        PyBuffer_Release(&p->perm);
        PyBuffer_Release(&p->unperm);
        p->has_perm = 0;
    }
}

static int read_plan(PyObject *o_perm, PyObject *o_unperm, PyObject *o_bands, int threshold, plan *p) {
    memset(p, 0, sizeof *p);
    if ((o_perm == Py_None) != (o_unperm == Py_None)) {
        PyErr_SetString(PyExc_ValueError, "perm and unperm come together");
        return -1;
    }
    if (o_perm != Py_None) {
        if (get(o_perm, &p->perm, 0, 8, "perm") < 0) return -1;
        if (get(o_unperm, &p->unperm, 0, 8, "unperm") < 0) {
            PyBuffer_Release(&p->perm);
            return -1;
        }
        p->has_perm = 1;
        if (p->perm.len != 8 * 256 * 8 || p->unperm.len != 8 * 256 * 8) {
            release_plan(p);
            PyErr_SetString(PyExc_ValueError, "perm and unperm are 8 x 256 uint64 tables");
            return -1;
        }
    }
    Py_buffer vb;
    if (get(o_bands, &vb, 0, 16, "bands") < 0) {
        release_plan(p);
        return -1;
    }
    const int32_t *v = vb.buf;
    p->nbands = (int)(vb.len / 16);
    int ok = p->nbands >= 1 && p->nbands <= MAX_BANDS, at = 0, reach = 0;
    for (int b = 0; ok && b < p->nbands; b++) {
        band_spec s = {v[4 * b], v[4 * b + 1], v[4 * b + 2], v[4 * b + 3]};
        uint64_t probes = 0, c = 1;
        for (int r = 0; r <= s.radius && r <= s.key; r++) { /* C(key, r) */
            probes += c;
            c = c * (uint64_t)(s.key - r) / (uint64_t)(r + 1);
        }
        ok = s.off == at && s.len >= 1 && s.key >= 0 && s.key <= s.len && s.key <= MAX_KEY && s.radius >= 0 &&
             probes <= MAX_MASKS;
        p->bands[b] = s;
        at += s.len;
        reach += s.radius + 1;
    }
    PyBuffer_Release(&vb);
    if (!ok || at != 64 || reach <= threshold) {
        release_plan(p);
        PyErr_SetString(PyExc_ValueError,
                        "bands must cover the 64 bits in order, keys within them, with sum(radius + 1) > threshold");
        return -1;
    }
    return 0;
}

static int check_index(const uint64_t *sorted, Py_ssize_t n) {
    for (Py_ssize_t i = 1; i < n; i++)
        if (sorted[i - 1] >= sorted[i]) {
            PyErr_SetString(PyExc_ValueError, "index must be distinct hashes in ascending order");
            return -1;
        }
    return 0;
}

static int check_owners(const int32_t *owners, Py_ssize_t no, Py_ssize_t n) {
    for (Py_ssize_t q = 0; owners && q < no; q++)
        if (owners[q] >= n) {
            PyErr_SetString(PyExc_ValueError, "an owner is outside the index");
            return -1;
        }
    return 0;
}

static int run_search(const uint64_t *index, Py_ssize_t n, const plan *p, search_args *s, int64_t *hits) {
    mih_index ix = {index, n, p->has_perm ? p->perm.buf : NULL, p->has_perm ? p->unperm.buf : NULL, NULL, NULL, 0,
                    0};
    s->bands = p->bands;
    s->nbands = p->nbands;
    if (s->threads < 1) s->threads = 1;
    if (s->threads > 64) s->threads = 64;
    int failed;
    Py_BEGIN_ALLOW_THREADS
    failed = search(&ix, s, hits);
    Py_END_ALLOW_THREADS
    if (failed) PyErr_NoMemory();
    return failed ? -1 : 0;
}

/* dup_union(index, queries, owners, parent, threshold, threads, symmetric, perm, unperm, bands) -> hits
 *
 * index: distinct uint64 hashes, ascending; queries: uint64 hashes; owners: int32 index position of
 * each query's own image, one per query or one per run of len(queries) / len(owners) queries (a
 * row's crop windows), negative for none; parent: the int32 union-find array over the index
 * (parent[i] <= i), updated in place: every query within threshold bits of an index hash joins
 * its owner's set.  symmetric: the queries are the index itself, each its own owner, so each pair
 * is compared from one side only (half the work).  perm, unperm, bands: the plan (read_plan).
 * Returns the number of hits merged (pairs seen, a pair once per band it is found in, never
 * stored).  The GIL is released throughout. */
PyObject *imp_py_dup_union(PyObject *self, PyObject *args) {
    PyObject *o_index, *o_queries, *o_owners, *o_parent, *o_perm, *o_unperm, *o_bands;
    int threshold, threads, symmetric;
    Py_buffer vi, vq, vo, vp;
    plan p;
    PyObject *result = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOiipOOO:dup_union", &o_index, &o_queries, &o_owners, &o_parent, &threshold,
                          &threads, &symmetric, &o_perm, &o_unperm, &o_bands))
        return NULL;
    if (threshold < 0 || threshold > 63) return PyErr_Format(PyExc_ValueError, "threshold out of range");
    if (read_plan(o_perm, o_unperm, o_bands, threshold, &p) < 0) return NULL;
    if (get(o_index, &vi, 0, 8, "index") < 0) goto fail_plan;
    if (get(o_queries, &vq, 0, 8, "queries") < 0) goto fail_i;
    if (get(o_owners, &vo, 0, 4, "owners") < 0) goto fail_q;
    if (get(o_parent, &vp, 1, 4, "parent") < 0) goto fail_o;
    Py_ssize_t n = vi.len / 8, nq = vq.len / 8, no = vo.len / 4;
    if (no == 0 || nq % no || vp.len / 4 != n || n > INT32_MAX || nq > UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "owners must divide queries and parent must match index");
        goto fail_p;
    }
    const int32_t *owners = vo.buf;
    if (check_owners(owners, no, n) < 0) goto fail_p;
    if (symmetric) { /* each pair is compared once: only right if the queries are the index, owned by itself */
        int ok = nq == n && no == n && memcmp(vq.buf, vi.buf, (size_t)n * 8) == 0;
        for (Py_ssize_t i = 0; ok && i < n; i++) ok = owners[i] == i;
        if (!ok) {
            PyErr_SetString(PyExc_ValueError, "symmetric: the queries must be the index and each its own owner");
            goto fail_p;
        }
    }
    if (check_index(vi.buf, n) < 0) goto fail_p;
    const int32_t *par = vp.buf;
    for (Py_ssize_t i = 0; i < n; i++)
        if (par[i] < 0 || par[i] > i) {
            PyErr_SetString(PyExc_ValueError, "parent must point to smaller indices");
            goto fail_p;
        }
    lead_args none = {NULL, NULL, 0, NULL, NULL, NULL, NULL, 0};
    search_args s = {vq.buf, owners, nq / no, nq, vp.buf, threshold, threads, symmetric, NULL, 0, &none};
    int64_t hits = 0;
    if (run_search(vi.buf, n, &p, &s, &hits) == 0) result = PyLong_FromLongLong(hits);
fail_p:
    PyBuffer_Release(&vp);
fail_o:
    PyBuffer_Release(&vo);
fail_q:
    PyBuffer_Release(&vq);
fail_i:
    PyBuffer_Release(&vi);
fail_plan:
    release_plan(&p);
    return result;
}

/* dup_lead(index, icheck, rank, queries, qcheck, owners, lead, threshold, check_threshold, threads,
 *          symmetric, perm, unperm, bands[, ichroma, qchroma, chroma_threshold]) -> hits
 *
 * dup_union's search, but a hit counts only when the confirming hashes (icheck per index position,
 * qcheck per query) are also within check_threshold bits (and the chroma words, uint32, within
 * chroma_threshold bits of the channels known on both sides, when given), and instead of joining sets it keeps,
 * per index position, the smallest rank it is confirmed near: lead[x] = min(lead[x], rank[y]) both
 * ways (lead starts as the caller gives it, normally rank itself).  owners None: each query its own
 * owner (symmetric only).  Returns the hits.  Groups built from lead are stars around a centre,
 * never chains; the result does not depend on the number of threads. */
PyObject *imp_py_dup_lead(PyObject *self, PyObject *args) {
    PyObject *o_index, *o_icheck, *o_rank, *o_queries, *o_qcheck, *o_owners, *o_lead, *o_perm, *o_unperm, *o_bands;
    PyObject *o_ichroma = Py_None, *o_qchroma = Py_None;
    int threshold, check_threshold, threads, symmetric, chroma_threshold = 32;
    Py_buffer vi, vic, vr, vq, vqc, vo, vl, vich, vqch;
    plan p;
    PyObject *result = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOOOOiiipOOO|OOi:dup_lead", &o_index, &o_icheck, &o_rank, &o_queries, &o_qcheck,
                          &o_owners, &o_lead, &threshold, &check_threshold, &threads, &symmetric, &o_perm,
                          &o_unperm, &o_bands, &o_ichroma, &o_qchroma, &chroma_threshold))
        return NULL;
    int colour = o_ichroma != Py_None;
    if (colour != (o_qchroma != Py_None))
        return PyErr_Format(PyExc_ValueError, "ichroma and qchroma: both or neither");
    if (threshold < 0 || threshold > 63) return PyErr_Format(PyExc_ValueError, "threshold out of range");
    if (read_plan(o_perm, o_unperm, o_bands, threshold, &p) < 0) return NULL;
    if (get(o_index, &vi, 0, 8, "index") < 0) goto fail_plan;
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
    memset(&vich, 0, sizeof vich);
    memset(&vqch, 0, sizeof vqch);
    if (colour && get(o_ichroma, &vich, 0, 4, "ichroma") < 0) goto fail_l;
    if (colour && get(o_qchroma, &vqch, 0, 4, "qchroma") < 0) goto fail_ich;
    Py_ssize_t n = vi.len / 8, nq = vq.len / 8, no = own_self ? nq : vo.len / 4;
    if (no == 0 || nq % no || vl.len / 4 != n || vic.len / 8 != n || vr.len / 4 != n || vqc.len / 8 != nq ||
        n > INT32_MAX || nq > UINT32_MAX || (colour && (vich.len / 4 != n || vqch.len / 4 != nq))) {
        PyErr_SetString(PyExc_ValueError,
                        "owners must divide queries; lead, icheck and ichroma match index, qcheck and qchroma queries");
        goto fail_qch;
    }
    const int32_t *owners = own_self ? NULL : vo.buf;
    if (own_self && !symmetric) {
        PyErr_SetString(PyExc_ValueError, "owners may be None only when symmetric");
        goto fail_qch;
    }
    if (check_owners(owners, no, n) < 0) goto fail_qch;
    if (symmetric) {
        int ok = nq == n && no == n && memcmp(vq.buf, vi.buf, (size_t)n * 8) == 0 &&
                 memcmp(vqc.buf, vic.buf, (size_t)n * 8) == 0 && (!colour || memcmp(vqch.buf, vich.buf, (size_t)n * 4) == 0);
        for (Py_ssize_t i = 0; ok && owners && i < n; i++) ok = owners[i] == i;
        if (!ok) {
            PyErr_SetString(PyExc_ValueError, "symmetric: the queries must be the index and each its own owner");
            goto fail_qch;
        }
    }
    if (check_index(vi.buf, n) < 0) goto fail_qch;
    const int32_t *rk = vr.buf;
    for (Py_ssize_t i = 0; i < n; i++)
        if (rk[i] < 0) {
            PyErr_SetString(PyExc_ValueError, "ranks must not be negative");
            goto fail_qch;
        }
    lead_args la = {vqc.buf, vic.buf, check_threshold, vl.buf, vr.buf, colour ? vqch.buf : NULL,
                    colour ? vich.buf : NULL, chroma_threshold};
    search_args s = {vq.buf, owners, nq / no, nq, NULL, threshold, threads, symmetric, NULL, 0, &la};
    int64_t hits = 0;
    if (run_search(vi.buf, n, &p, &s, &hits) == 0) result = PyLong_FromLongLong(hits);
fail_qch:
    if (colour) PyBuffer_Release(&vqch);
fail_ich:
    if (colour) PyBuffer_Release(&vich);
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
fail_plan:
    release_plan(&p);
    return result;
}
