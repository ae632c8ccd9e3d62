/* The hardware limit for imgprep's task: the native core (native/core.c) in a plain C loop.
 *
 * Files are read into memory first; then each image is DCT-scaled decoded to YCbCr planes,
 * resampled (shorter side N, Pillow BILINEAR) and encoded at quality Q, 4:2:0.  No Python, no
 * framing, no output.  With -p P the file list is split over P forked processes, with -t T
 * over T threads (the way imgprep's packer runs the native path).
 *
 *   cc -O3 -std=c11 -Inative benchmarks/bare_loop.c native/core.c -lturbojpeg -lm -lpthread -o bare_loop
 *   ./bare_loop -n 256 -q 95 -p 2 -r 3 FILE...      (or: -l LISTFILE, one path a line; -t 2: threads)
 *
 * Prints: images, processes, seconds, images/s (best of -r rounds).
 */
#define _DEFAULT_SOURCE /* POSIX 2008 plus MAP_ANONYMOUS */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "core.h"

typedef struct {
    unsigned char *data;
    size_t len;
} blob;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int load(const char *path, blob *b) {
    FILE *f = fopen(path, "rb");
    long n;
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b->data = malloc(n > 0 ? (size_t)n : 1);
    b->len = b->data && n > 0 ? fread(b->data, 1, (size_t)n, f) : 0;
    fclose(f);
    return b->len == (size_t)n ? 0 : -1;
}

/* Same geometry as imgprep.imaging.geometry for --resize N (im2rec's integer rounding). */
static int one(const blob *b, int n, int quality) {
    imp_info info;
    imp_job job;
    char err[IMP_ERRLEN];
    unsigned char *out = NULL;
    unsigned long out_len = 0;
    int w, h, tw, th, s = 1, rc;
    if (imp_probe(b->data, b->len, &info, err) != IMP_OK) return -1;
    w = info.orientation >= 5 ? info.height : info.width;
    h = info.orientation >= 5 ? info.width : info.height;
    if (h > w) {
        tw = n;
        th = (int)((long)h * n / w);
    } else {
        tw = (int)((long)w * n / h);
        th = n;
    }
    if (tw < 1) tw = 1;
    if (th < 1) th = 1;
    for (int c = 8; c >= 2; c /= 2)
        if (w >= tw * c && h >= th * c) {
            s = c;
            break;
        }
    memset(&job, 0, sizeof job);
    job.scale = s;
    job.orientation = info.orientation;
    job.box[2] = (double)w / s;
    job.box[3] = (double)h / s;
    job.size[0] = job.canvas[0] = tw;
    job.size[1] = job.canvas[1] = th;
    job.quality = quality;
    rc = imp_transform(b->data, b->len, &job, &out, &out_len, err);
    tjFree(out);
    return rc == IMP_OK ? 0 : -1;
}

/* Workers take the next image from a shared counter (memory shared across fork too), so images of
 * very different sizes (2-12 MP in the large corpus) cannot leave one worker idle at the end. */
static int run(const blob *blobs, int count, int *next, int n, int quality) {
    int bad = 0;
    for (int i; (i = __atomic_fetch_add(next, 1, __ATOMIC_RELAXED)) < count;) bad += one(&blobs[i], n, quality) != 0;
    return bad;
}

typedef struct {
    const blob *blobs;
    int count, *next, n, quality, bad;
} slice;

static void *run_slice(void *arg) {
    slice *s = arg;
    s->bad = run(s->blobs, s->count, s->next, s->n, s->quality);
    return NULL;
}

int main(int argc, char **argv) {
    int n = 256, quality = 95, procs = 1, threads = 0, rounds = 3, opt, count = 0, cap = 0;
    const char *list = NULL;
    blob *blobs = NULL;
    double best = 1e30;
    while ((opt = getopt(argc, argv, "n:q:p:t:r:l:")) != -1) {
        switch (opt) {
        case 'n': n = atoi(optarg); break;
        case 'q': quality = atoi(optarg); break;
        case 'p': procs = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'r': rounds = atoi(optarg); break;
        case 'l': list = optarg; break;
        default: fprintf(stderr, "usage: %s [-n N] [-q Q] [-p P | -t T] [-r R] [-l LIST] FILE...\n", argv[0]); return 2;
        }
    }
    if (procs < 1 || threads < 0 || threads > 256 || rounds < 1 || n < 1) return 2;
    /* collect paths */
    {
        char line[4096];
        FILE *lf = list ? fopen(list, "r") : NULL;
        if (list && !lf) {
            perror(list);
            return 1;
        }
        for (int i = optind;; i++) {
            const char *path;
            if (lf) {
                if (!fgets(line, sizeof line, lf)) break;
                line[strcspn(line, "\r\n")] = 0;
                if (!line[0]) continue;
                path = line;
            } else {
                if (i >= argc) break;
                path = argv[i];
            }
            if (count == cap) {
                cap = cap ? cap * 2 : 256;
                blobs = realloc(blobs, sizeof(blob) * (size_t)cap);
                if (!blobs) return 1;
            }
            if (load(path, &blobs[count]) != 0) {
                fprintf(stderr, "cannot read %s\n", path);
                return 1;
            }
            count++;
        }
        if (lf) fclose(lf);
    }
    if (!count) return 2;
    int *next = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (next == MAP_FAILED) return 1;
    *next = 0;
    run(blobs, count, next, n, quality); /* warm-up: page cache, code, allocator */
    for (int r = 0; r < rounds; r++) {
        double t0 = now(), dt;
        int bad = 0;
        *next = 0;
        if (threads) {
            pthread_t tid[256];
            slice sl[256];
            for (int t = 0; t < threads; t++) {
                sl[t] = (slice){blobs, count, next, n, quality, 0};
                if (pthread_create(&tid[t], NULL, run_slice, &sl[t]) != 0) return 1;
            }
            for (int t = 0; t < threads; t++) {
                pthread_join(tid[t], NULL);
                bad += sl[t].bad;
            }
        } else if (procs == 1) {
            bad = run(blobs, count, next, n, quality);
        } else {
            for (int p = 0; p < procs; p++) {
                pid_t pid = fork();
                if (pid == 0) _exit(run(blobs, count, next, n, quality) ? 1 : 0);
                if (pid < 0) return 1;
            }
            for (int p = 0; p < procs; p++) {
                int st;
                wait(&st);
                bad += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
            }
        }
        dt = now() - t0;
        if (bad) fprintf(stderr, "warning: %d failures\n", bad);
        if (dt < best) best = dt;
    }
    printf("images=%d %s=%d seconds=%.3f images_per_s=%.1f\n", count, threads ? "threads" : "processes",
           threads ? threads : procs, best, count / best);
    return 0;
}
