/* The hardware limit for imgprep's task: the native core (native/core.c) in a plain C loop.
 *
 * Files are read into memory first; then each image is DCT-scaled decoded to YCbCr planes,
 * resampled (shorter side N, Pillow BILINEAR) and encoded at quality Q, 4:2:0.  No Python, no
 * framing, no output.  With -p P the file list is split over P forked processes.
 *
 *   cc -O3 -std=c11 -Inative benchmarks/bare_loop.c native/core.c -lturbojpeg -lm -o bare_loop
 *   ./bare_loop -n 256 -q 95 -p 2 -r 3 FILE...      (or: -l LISTFILE, one path a line)
 *
 * Prints: images, processes, seconds, images/s (best of -r rounds).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static int run(const blob *blobs, int count, int first, int step, int n, int quality) {
    int bad = 0;
    for (int i = first; i < count; i += step) bad += one(&blobs[i], n, quality) != 0;
    return bad;
}

int main(int argc, char **argv) {
    int n = 256, quality = 95, procs = 1, rounds = 3, opt, count = 0, cap = 0;
    const char *list = NULL;
    blob *blobs = NULL;
    double best = 1e30;
    while ((opt = getopt(argc, argv, "n:q:p:r:l:")) != -1) {
        switch (opt) {
        case 'n': n = atoi(optarg); break;
        case 'q': quality = atoi(optarg); break;
        case 'p': procs = atoi(optarg); break;
        case 'r': rounds = atoi(optarg); break;
        case 'l': list = optarg; break;
        default: fprintf(stderr, "usage: %s [-n N] [-q Q] [-p P] [-r R] [-l LIST] FILE...\n", argv[0]); return 2;
        }
    }
    if (procs < 1 || rounds < 1 || n < 1) return 2;
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
    run(blobs, count, 0, 1, n, quality); /* warm-up: page cache, code, allocator */
    for (int r = 0; r < rounds; r++) {
        double t0 = now(), dt;
        int bad = 0;
        if (procs == 1) {
            bad = run(blobs, count, 0, 1, n, quality);
        } else {
            for (int p = 0; p < procs; p++) {
                pid_t pid = fork();
                if (pid == 0) _exit(run(blobs, count, p, procs, n, quality) ? 1 : 0);
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
    printf("images=%d processes=%d seconds=%.3f images_per_s=%.1f\n", count, procs, best, count / best);
    return 0;
}
