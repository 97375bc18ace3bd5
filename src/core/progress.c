/*
 * Progress on stderr: a bar with rate and ETA on a terminal, a plain line at
 * most every 5 seconds otherwise (logs stay readable), nothing when quiet.
 */
#include "normscope/core.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int quiet;

double ns_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

void ns_progress_set_quiet(int q)
{
    quiet = q;
}

int ns_progress_quiet(void)
{
    return quiet;
}

void ns_note(const char *fmt, ...)
{
    if (quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void ns_progress_begin(ns_progress *p, const char *label, size_t total)
{
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total;
    p->t_start = p->t_last = ns_time();
    p->tty = isatty(STDERR_FILENO);
}

static void fmt_eta(char *buf, size_t len, double s)
{
    if (s < 0 || s > 1e7)
        snprintf(buf, len, "--:--");
    else if (s >= 3600)
        snprintf(buf, len, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
    else
        snprintf(buf, len, "%02d:%02d", (int)s / 60, (int)s % 60);
}

void ns_progress_update(ns_progress *p, size_t done, const char *extra)
{
    if (quiet)
        return;
    double now = ns_time();
    p->done = done;
    double interval = p->tty ? 0.1 : 5.0;
    if (now - p->t_last < interval && done < p->total)
        return;
    p->t_last = now;
    double el = now - p->t_start;
    double rate = el > 0 ? done / el : 0;
    char eta[32];
    fmt_eta(eta, sizeof eta, rate > 0 ? (p->total - done) / rate : -1);
    double frac = p->total ? (double)done / p->total : 1.0;
    if (p->tty) {
        char bar[31];
        int fill = (int)(frac * 30);
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r%s [%s] %3.0f%% %.0f/s ETA %s %s\033[K", p->label, bar,
                100 * frac, rate, eta, extra ? extra : "");
    } else {
        fprintf(stderr, "%s: %zu/%zu (%.0f%%) %.0f/s ETA %s %s\n", p->label, done,
                p->total, 100 * frac, rate, eta, extra ? extra : "");
    }
    fflush(stderr);
}

void ns_progress_end(ns_progress *p, const char *extra)
{
    if (quiet)
        return;
    double el = ns_time() - p->t_start;
    if (p->tty)
        fprintf(stderr, "\r\033[K");
    fprintf(stderr, "%s: done in %.1f s %s\n", p->label, el, extra ? extra : "");
}
