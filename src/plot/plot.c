/*
 * Figures through gnuplot (DESIGN.md section 4, `normscope plot`).
 *
 * A figure kind is a row of kinds[] below: its name, a one-line description,
 * the gnuplot script in plots/ and an export function that writes the data
 * the script reads.  ns_plot_render() does the rest for every kind: it opens
 * and checks the inputs before touching the output directory, refuses to
 * overwrite a figure without force, writes the data into a temporary
 * directory DIR/.<kind>-data.tmp-PID, runs
 *   gnuplot -e "datadir='..'; out='..'; fmt='png'; scriptdir='..'; <kind's
 *              variables>" plots/<kind>.gp
 * with gnuplot drawing into a temporary name in DIR, and moves the figure,
 * then the data (to DIR/<kind>-data/), into place only when gnuplot
 * succeeded and the figure is complete; otherwise nothing of it is left.
 */
#include "internal.h"
#include "normscope/train.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#ifndef NS_PREFIX
#define NS_PREFIX "/usr/local"
#endif

/* ------------------------------------------------------------ the table */

static const ns_plot_kind kinds[] = {
    {"curves", "training curves of run files overlaid: test accuracy, loss, learning rate",
     "curves.gp", NS_RUN_FORMAT, 10, ns_plot_export_curves},
    {"phase", "mean-field phase diagram: chi_1 and c* over sigma_w^2 x sigma_b^2, critical line",
     "phase.gp", NS_RESULT_FORMAT, 1, ns_plot_export_phase},
    {"trajectory", "mean-field q, c and NTK condition number through depth, files overlaid",
     "trajectory.gp", NS_RESULT_FORMAT, 8, ns_plot_export_trajectory},
    {"dualmap", "the c-maps T and Tbar (weight mean) of MimicNorm's Figure 4, files overlaid",
     "dualmap.gp", NS_RESULT_FORMAT, 4, ns_plot_export_dualmap},
    {"ntk-spectrum", "NTK eigenvalues against rank per checkpoint, absolute and relative to the "
     "largest, a row per file", "ntk-spectrum.gp", NS_RESULT_FORMAT, 6, ns_plot_export_ntk_spectrum},
    {"ntk-training", "NTK condition number, drift, effective rank and label alignment over "
     "training, files overlaid", "ntk-training.gp", NS_RESULT_FORMAT, 10, ns_plot_export_ntk_training},
    {"ntk-layers", "each layer's share of the NTK trace over training, a panel per file",
     "ntk-layers.gp", NS_RESULT_FORMAT, 6, ns_plot_export_ntk_layers},
    {"ntk-depth", "NTK condition number against depth: infinite-width theory (ntk --analytic), "
     "plain and weight mean, with the measured points of the files", "ntk-depth.gp",
     NS_RESULT_FORMAT, 0, ns_plot_export_ntk_depth},
    {"act-spectrum", "covariance eigenvalues of each layer's activations relative to the "
     "largest against rank, shallow (dark) to deep (light), a panel per file",
     "act-spectrum.gp", NS_RESULT_FORMAT, 6, ns_plot_export_act_spectrum},
    {"whitening", "condition number, effective rank, participation ratio, correlation and "
     "cosine similarity of the activations against depth, files overlaid", "whitening.gp",
     NS_RESULT_FORMAT, 10, ns_plot_export_whitening},
    {"channels", "per-channel box plots of the activations of up to four layers through depth, "
     "a row per file", "channels.gp", NS_RESULT_FORMAT, 4, ns_plot_export_channels},
    {"weight-esd", "eigenvalue densities of W^T W of up to six weights through depth with the "
     "fitted power law, files overlaid", "weight-esd.gp", NS_RESULT_FORMAT, 6,
     ns_plot_export_weight_esd},
};

const ns_plot_kind *ns_plot_kinds(size_t *n)
{
    *n = sizeof kinds / sizeof *kinds;
    return kinds;
}

const ns_plot_kind *ns_plot_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof kinds / sizeof *kinds; i++)
        if (strcmp(kinds[i].name, name) == 0)
            return &kinds[i];
    return NULL;
}

int ns_plot_format_ok(const char *format)
{
    return format && (!strcmp(format, "png") || !strcmp(format, "svg") ||
                      !strcmp(format, "pdf"));
}

/* -------------------------------------------------- helpers for kinds */

/* NS_ENOMEM once an append to the gnuplot variables has failed. */
static int vars_status(const ns_plot_ctx *c)
{
    return c->vars.failed ? ns_error(NS_ENOMEM, "out of memory (%zu bytes for gnuplot "
                                     "variables)", c->vars.len) : NS_OK;
}

int ns_plot_sb_var(ns_plot_ctx *c, ns_sb *b, const char *name, int st)
{
    if (!st && b->failed)
        st = ns_error(NS_ENOMEM, "out of memory (gnuplot variable '%s')", name);
    if (!st)
        st = ns_plot_var_str(c, name, ns_sb_str(b));
    ns_sb_release(b);
    return st;
}

const char *ns_plot_base(const char *path)
{
    const char *s = strrchr(path, '/');
    return s && s[1] ? s + 1 : path;
}

void ns_plot_clean(char *s, char space)
{
    for (; *s; s++)
        if (*s == '|')
            *s = '/';
        else if ((unsigned char)*s < 0x20 || (space && *s == ' '))
            *s = space ? space : ' ';
}

/* Variable names are identifiers chosen by the code, never by the user. */
static int var_name_ok(const char *name)
{
    if (!name || !*name || (*name >= '0' && *name <= '9'))
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '_'))
            return 0;
    return 1;
}

int ns_plot_var_str(ns_plot_ctx *c, const char *name, const char *value)
{
    if (!var_name_ok(name))
        return ns_error(NS_EFAIL, "bad gnuplot variable name '%s'", name ? name : "");
    ns_sb_appendf(&c->vars, "%s='", name);
    /* Inside gnuplot's single quotes nothing is special but the quote
     * itself, written twice; newlines would end the -e command. */
    for (const char *p = value; *p; p++) {
        if (*p == '\'')
            ns_sb_append(&c->vars, "''");
        else if (*p == '\n' || *p == '\r')
            ns_sb_append(&c->vars, " ");
        else
            ns_sb_appendf(&c->vars, "%c", *p);
    }
    ns_sb_append(&c->vars, "'; ");
    return vars_status(c);
}

int ns_plot_var_num(ns_plot_ctx *c, const char *name, double value)
{
    if (!var_name_ok(name))
        return ns_error(NS_EFAIL, "bad gnuplot variable name '%s'", name ? name : "");
    if (!isfinite(value))
        ns_sb_appendf(&c->vars, "%s=NaN; ", name);
    else if (value == floor(value) && fabs(value) < 1e15)
        ns_sb_appendf(&c->vars, "%s=%.0f; ", name, value);
    else
        ns_sb_appendf(&c->vars, "%s=%.17g; ", name, value);
    return vars_status(c);
}

FILE *ns_plot_data_open(ns_plot_ctx *c, const char *file, char *path, size_t len)
{
    char tmp[1400];
    if ((size_t)snprintf(path, len, "%s/%s", c->finaldir, file) >= len ||
        (size_t)snprintf(tmp, sizeof tmp, "%s/%s", c->datadir, file) >= sizeof tmp) {
        ns_error(NS_EINVAL, "output path too long: '%s/%s'", c->finaldir, file);
        return NULL;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        c->write_failed = 1;
        ns_error(NS_EWRITE, "cannot write '%s': %s", path, strerror(errno));
    } else {
        ns_tmp_register(tmp, path);
    }
    return f;
}

int ns_plot_data_close(FILE *f, const char *path)
{
    int bad = ferror(f), err = bad ? errno : 0;
    if (fclose(f) != 0 && !err)
        err = errno;
    if (bad || err)
        return ns_error(NS_EWRITE, "cannot write '%s': %s", path, strerror(err ? err : EIO));
    return NS_OK;
}

void ns_plot_data_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, " %.9g", v);
    else
        fputs(" NaN", f);
}

static void read_str(ns_hid fid, const char *name, char *buf, size_t len, const char *dflt)
{
    if (ns_h5_get_str(fid, ".", name, buf, len) || !*buf)
        snprintf(buf, len, "%s", dflt);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s && s[1] ? s + 1 : path;
}

void ns_plot_run_labels(const ns_plot_ctx *c, char (*labels)[NS_PLOT_LABEL_MAX])
{
    for (size_t i = 0; i < c->n; i++) {
        char norm[32], arch[96];
        read_str(c->fids[i], "norm", norm, sizeof norm, "?");
        read_str(c->fids[i], "arch", arch, sizeof arch, "?");
        snprintf(labels[i], NS_PLOT_LABEL_MAX, "%s %s", norm, arch);
    }
    /* Where labels collide the file names tell the runs apart; where those
     * collide too, the paths as given. */
    char (*next)[NS_PLOT_LABEL_MAX] = calloc(c->n ? c->n : 1, sizeof *next);
    for (int pass = 0; next && pass < 2; pass++) {
        for (size_t i = 0; i < c->n; i++) {
            int dup = 0;
            for (size_t j = 0; j < c->n; j++)
                dup |= j != i && strcmp(labels[i], labels[j]) == 0;
            if (!dup) {
                memcpy(next[i], labels[i], NS_PLOT_LABEL_MAX);
                continue;
            }
            char norm[32], arch[96];
            read_str(c->fids[i], "norm", norm, sizeof norm, "?");
            read_str(c->fids[i], "arch", arch, sizeof arch, "?");
            snprintf(next[i], NS_PLOT_LABEL_MAX, "%s %s (%s)", norm, arch,
                     pass == 0 ? base_name(c->paths[i]) : c->paths[i]);
        }
        for (size_t i = 0; i < c->n; i++)
            memcpy(labels[i], next[i], NS_PLOT_LABEL_MAX);
    }
    free(next);
    for (size_t i = 0; i < c->n; i++) {
        char status[32];
        read_str(c->fids[i], "status", status, sizeof status, "complete");
        size_t k = strlen(labels[i]);
        if (strcmp(status, "complete") != 0 && k + 4 < NS_PLOT_LABEL_MAX)
            snprintf(labels[i] + k, NS_PLOT_LABEL_MAX - k, " [%s]", status);
        /* '|' separates labels on gnuplot's command line. */
        for (char *p = labels[i]; *p; p++)
            if (*p == '|')
                *p = '/';
            else if ((unsigned char)*p < 0x20)
                *p = ' ';
    }
}

/* ------------------------------------------------------ script lookup */

static int script_in(const char *dir, const char *script, char *out, size_t len)
{
    char p[4096];
    if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, script) >= sizeof p ||
        access(p, R_OK) != 0)
        return 0;
    return (size_t)snprintf(out, len, "%s", dir) < len;
}

int ns_plot_scripts_dir(const char *script, char *dir, size_t len)
{
    char tried[2048] = "";
    size_t used = 0;
    const char *env = getenv("NS_PLOTS_DIR");
    if (env && *env) {
        if (script_in(env, script, dir, len))
            return NS_OK;
        used += (size_t)snprintf(tried + used, sizeof tried - used, "%s, ", env);
    }
    char exe[4096];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = '\0';
        char *d = dirname(exe);
        /* build/<precision>/normscope in the source tree; PREFIX/bin/normscope
         * when installed. */
        const char *rel[] = {"../../plots", "../share/normscope/plots"};
        for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
            char cand[4200];
            snprintf(cand, sizeof cand, "%s/%s", d, rel[i]);
            if (script_in(cand, script, dir, len))
                return NS_OK;
            if (used < sizeof tried)
                used += (size_t)snprintf(tried + used, sizeof tried - used, "%s, ", cand);
        }
    }
    if (script_in(NS_PREFIX "/share/normscope/plots", script, dir, len))
        return NS_OK;
    if (used < sizeof tried)
        snprintf(tried + used, sizeof tried - used, "%s", NS_PREFIX "/share/normscope/plots");
    return ns_error(NS_EFAIL, "cannot find the gnuplot script '%s' (looked in %s); "
                    "set NS_PLOTS_DIR to the plots/ directory", script, tried);
}

/* -------------------------------------------------------------- files */

/* mkdir -p. */
static int make_dirs(const char *path)
{
    char buf[1100];
    if ((size_t)snprintf(buf, sizeof buf, "%s", path) >= sizeof buf)
        return ns_error(NS_EINVAL, "output path too long: '%s'", path);
    for (char *p = buf + 1; ; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        struct stat sb;
        if (stat(buf, &sb) != 0) {
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return ns_error(NS_EIO, "cannot create directory '%s': %s", buf,
                                strerror(errno));
        } else if (!S_ISDIR(sb.st_mode)) {
            return ns_error(NS_EINVAL, "'%s' is not a directory", buf);
        }
        if (c == '\0')
            return NS_OK;
        *p = c;
    }
}

static int join(char *out, size_t len, const char *dir, const char *a, const char *b)
{
    size_t k = strlen(dir);
    const char *sep = k && dir[k - 1] == '/' ? "" : "/";
    if ((size_t)snprintf(out, len, "%s%s%s%s", dir, sep, a, b) >= len)
        return ns_error(NS_EINVAL, "output path too long: '%s%s%s%s'", dir, sep, a, b);
    return NS_OK;
}

/* ------------------------------------------------------------ gnuplot */

#define GNUPLOT_HINT "install gnuplot, e.g. apt-get install gnuplot-nox"

/* Looks for gnuplot on PATH as execvp will, so a missing gnuplot is
 * reported before anything is written. */
static int gnuplot_on_path(void)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/bin:/bin";
    for (const char *p = path; ; ) {
        const char *e = strchr(p, ':');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        char cand[4096];
        if (k + 10 < sizeof cand) {
            if (k)
                snprintf(cand, sizeof cand, "%.*s/gnuplot", (int)k, p);
            else
                snprintf(cand, sizeof cand, "./gnuplot");
            if (access(cand, X_OK) == 0)
                return 1;
        }
        if (!e)
            return 0;
        p = e + 1;
    }
}

/* Output worth showing: lines that are neither blank nor gnuplot's '^'
 * pointer under the echoed command. */
static int meaningful(const char *line)
{
    for (const char *p = line; *p; p++)
        if (*p != ' ' && *p != '\t' && *p != '^')
            return 1;
    return 0;
}

/* The last two meaningful lines, trimmed and joined, into msg. */
static void summarise(char *out, char *msg, size_t len)
{
    char *lines[2] = {NULL, NULL};
    for (char *save = NULL, *l = strtok_r(out, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save)) {
        while (*l == ' ' || *l == '\t')
            l++;
        if (meaningful(l)) {
            lines[0] = lines[1];
            lines[1] = l;
        }
    }
    if (!lines[1])
        snprintf(msg, len, "no message");
    else if (!lines[0])
        snprintf(msg, len, "%s", lines[1]);
    else
        snprintf(msg, len, "%s: %s", lines[0], lines[1]);
}

/* Runs gnuplot -e vars script with stdin from /dev/null, collecting its
 * output (gnuplot reports on stderr). */
static int run_gnuplot(const char *vars, const char *script)
{
    int fd[2];
    if (pipe(fd) != 0)
        return ns_error(NS_EFAIL, "cannot run gnuplot: %s", strerror(errno));
    /* posix_spawn rather than fork: the process may hold OpenMP threads,
     * and spawn reports a failed exec as its own return value. */
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 2);
    if (fd[0] > 2)
        posix_spawn_file_actions_addclose(&fa, fd[0]);
    if (fd[1] > 2)
        posix_spawn_file_actions_addclose(&fa, fd[1]);
    char *argv[] = {"gnuplot", "-e", (char *)vars, (char *)script, NULL};
    pid_t pid;
    int e = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (e != 0) {
        close(fd[0]);
        close(fd[1]);
        return ns_error(NS_EFAIL, "cannot run gnuplot: %s (" GNUPLOT_HINT ")", strerror(e));
    }
    close(fd[1]);
    size_t cap = 16384, used = 0;
    char *out = malloc(cap + 1);
    char sink[4096];
    for (;;) {
        char *dst = out && used < cap ? out + used : sink;
        size_t room = out && used < cap ? cap - used : sizeof sink;
        ssize_t k = read(fd[0], dst, room);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        if (dst != sink)
            used += (size_t)k;
    }
    close(fd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (out)
        out[used] = '\0';
    int st = NS_OK;
    char msg[512];
    if (WIFSIGNALED(status)) {
        st = ns_error(NS_EFAIL, "gnuplot was killed by signal %d", WTERMSIG(status));
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char empty[1] = "";
        summarise(out ? out : empty, msg, sizeof msg);
        st = ns_error(NS_EFAIL, "gnuplot failed on '%s': %s", script, msg);
    } else if (out) {
        /* Warnings of a successful run; empty data files are expected (the
         * export functions say which input lacks data). */
        for (char *save = NULL, *l = strtok_r(out, "\n", &save); l;
             l = strtok_r(NULL, "\n", &save))
            if (strstr(l, "warning") && !strstr(l, "no valid points"))
                ns_note("normscope: gnuplot: %s", l + strspn(l, " \t"));
    }
    free(out);
    return st;
}

/* --------------------------------------------------------- the output */

/* 1 when the figure ends as a complete file of its format does.  gnuplot
 * does not check its writes: on a full disk it leaves a truncated figure
 * and exits with status 0. */
static int figure_complete(const char *path, const char *fmt)
{
    static const unsigned char iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D',
                                           0xae, 0x42, 0x60, 0x82};
    unsigned char tail[64];
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    if (fseek(f, -(long)sizeof tail, SEEK_END) != 0)
        rewind(f);
    size_t n = fread(tail, 1, sizeof tail, f);
    fclose(f);
    if (!strcmp(fmt, "png"))
        return n >= sizeof iend && !memcmp(tail + n - sizeof iend, iend, sizeof iend);
    const char *mark = !strcmp(fmt, "svg") ? "</svg>" : "%%EOF";
    size_t k = strlen(mark);
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(tail + i, mark, k))
            return 1;
    return 0;
}

/* Removes the temporary data directory and what is in it. */
static void remove_data(const char *dir)
{
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d)) != NULL; ) {
        char p[1400];
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
        ns_tmp_forget(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
    ns_tmp_forget(dir);
}

/* Moves the data files of a complete figure to c->finaldir: the whole
 * directory when there is none yet, else file by file. */
static int publish_data(ns_plot_ctx *c)
{
    struct stat sb;
    if (stat(c->finaldir, &sb) != 0) {
        if (rename(c->datadir, c->finaldir) != 0)
            return ns_error(NS_EWRITE, "cannot write '%s': %s", c->finaldir, strerror(errno));
        DIR *d = opendir(c->finaldir);
        for (struct dirent *e; d && (e = readdir(d)) != NULL; ) {
            char p[1400];
            snprintf(p, sizeof p, "%s/%s", c->datadir, e->d_name);
            ns_tmp_forget(p);
        }
        if (d)
            closedir(d);
        ns_tmp_forget(c->datadir);
        return NS_OK;
    }
    DIR *d = opendir(c->datadir);
    if (!d)
        return ns_error(NS_EWRITE, "cannot read '%s': %s", c->datadir, strerror(errno));
    int st = NS_OK;
    for (struct dirent *e; !st && (e = readdir(d)) != NULL; ) {
        char from[1400], to[1400];
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(from, sizeof from, "%s/%s", c->datadir, e->d_name);
        snprintf(to, sizeof to, "%s/%s", c->finaldir, e->d_name);
        if (rename(from, to) != 0)
            st = ns_error(NS_EWRITE, "cannot write '%s': %s", to, strerror(errno));
        else
            ns_tmp_forget(from);
    }
    closedir(d);
    if (!st) {
        rmdir(c->datadir);
        ns_tmp_forget(c->datadir);
    }
    return st;
}

/* ------------------------------------------------------------- render */

int ns_plot_render(const ns_plot_kind *kind, const char *const *paths, size_t n,
                   const ns_plot_opts *opts, char *figure, size_t len)
{
    ns_plot_ctx c;
    memset(&c, 0, sizeof c);
    ns_hid *fids = NULL;
    char tmp[1200] = "", sdir[2048], script[2200];
    const char *fmt = opts->format ? opts->format : "png";
    int st = NS_OK, made_out = 0, made_data = 0;
    struct stat sb;

    if (!ns_plot_format_ok(fmt))
        return ns_error(NS_EINVAL, "unknown figure format '%s' (%s)", fmt, NS_PLOT_FORMATS);
    if (n == 0)
        return ns_error(NS_EINVAL, "no input file given");
    if (kind->max_inputs && n > kind->max_inputs)
        return ns_error(NS_EINVAL, "'%s' draws at most %zu files, got %zu", kind->name,
                        kind->max_inputs, n);
    if (!opts->outdir || !*opts->outdir)
        return ns_error(NS_EINVAL, "no output directory given (use -o DIR)");

    /* Every input is checked before anything is written. */
    fids = ns_malloc(n * sizeof *fids);
    if (!fids)
        return NS_ENOMEM;
    for (size_t i = 0; i < n; i++)
        fids[i] = NS_HID_INVALID;
    for (size_t i = 0; i < n && !st; i++) {
        /* Run files go through the one check every reader of them makes. */
        if (!strcmp(kind->input, NS_RUN_FORMAT))
            st = ns_run_check(paths[i]);
        if (!st)
            st = ns_h5_open_format(paths[i], kind->input, &fids[i]);
    }
    if (st)
        goto cleanup;

    char ext[16];
    snprintf(ext, sizeof ext, ".%s", fmt);
    if ((st = join(figure, len, opts->outdir, kind->name, ext)))
        goto cleanup;
    if (stat(figure, &sb) == 0) {
        if (S_ISDIR(sb.st_mode)) {
            st = ns_error(NS_EINVAL, "'%s' is a directory", figure);
            goto cleanup;
        }
        if ((st = ns_out_names_input(figure, paths, n)))
            goto cleanup;
        if (!opts->force) {
            st = ns_error(NS_EINVAL, "'%s' exists; use --force to overwrite", figure);
            goto cleanup;
        }
    }
    if ((st = join(c.finaldir, sizeof c.finaldir, opts->outdir, kind->name, "-data")))
        goto cleanup;
    if (stat(c.finaldir, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
        st = ns_error(NS_EINVAL, "'%s' is not a directory", c.finaldir);
        goto cleanup;
    }
    if ((st = ns_plot_scripts_dir(kind->script, sdir, sizeof sdir)))
        goto cleanup;
    snprintf(script, sizeof script, "%s/%s", sdir, kind->script);
    if (!gnuplot_on_path()) {
        st = ns_error(NS_EFAIL, "cannot run gnuplot: not found on PATH (" GNUPLOT_HINT ")");
        goto cleanup;
    }

    /* Directories made here are removed again (when still empty) if the
     * figure fails, so bad input leaves nothing behind. */
    made_out = stat(opts->outdir, &sb) != 0;
    if ((st = make_dirs(opts->outdir)))
        goto cleanup;
    char suffix[64], hidden[128];
    snprintf(suffix, sizeof suffix, "-data.tmp-%ld", (long)getpid());
    snprintf(hidden, sizeof hidden, ".%s", kind->name);
    if ((st = join(c.datadir, sizeof c.datadir, opts->outdir, hidden, suffix)))
        goto cleanup;
    if (mkdir(c.datadir, 0777) != 0) {
        int err = errno;
        st = ns_error(err == ENOSPC || err == EDQUOT ? NS_EWRITE : NS_EIO,
                      "cannot write '%s': %s", c.finaldir, strerror(err));
        goto cleanup;
    }
    made_data = 1;
    ns_tmp_register(c.datadir, c.finaldir);
    snprintf(suffix, sizeof suffix, ".%s.tmp-%ld", fmt, (long)getpid());
    if ((st = join(tmp, sizeof tmp, opts->outdir, hidden, suffix)))
        goto cleanup;
    ns_tmp_register(tmp, figure);

    c.kind = kind;
    c.paths = paths;
    c.fids = fids;
    c.n = n;
    st = ns_plot_var_str(&c, "datadir", c.datadir);
    if (!st) st = ns_plot_var_str(&c, "out", tmp);
    if (!st) st = ns_plot_var_str(&c, "fmt", fmt);
    if (!st) st = ns_plot_var_str(&c, "scriptdir", sdir);
    if (!st) st = kind->export_data(&c);
    /* Export functions report a data file they could not open as NS_EIO. */
    if (st && c.write_failed)
        st = NS_EWRITE;
    if (st)
        goto cleanup;

    unlink(tmp);
    if ((st = run_gnuplot(ns_sb_str(&c.vars), script)))
        goto cleanup;
    if (stat(tmp, &sb) != 0 || sb.st_size == 0) {
        st = ns_error(NS_EFAIL, "gnuplot wrote no figure with '%s'", script);
        goto cleanup;
    }
    if (!figure_complete(tmp, fmt)) {
        st = ns_error(NS_EWRITE, "cannot write '%s': gnuplot left it incomplete (is the disk "
                      "full?)", figure);
        goto cleanup;
    }
    if ((st = ns_out_publish(tmp, figure, opts->force)))
        goto cleanup;
    ns_tmp_forget(tmp);
    tmp[0] = '\0';
    if ((st = publish_data(&c)))
        goto cleanup;
    made_data = 0;

cleanup:
    if (tmp[0]) {
        unlink(tmp);
        ns_tmp_forget(tmp);
    }
    if (made_data)
        remove_data(c.datadir);
    if (st && made_out)
        rmdir(opts->outdir);
    for (size_t i = 0; fids && i < n; i++)
        ns_h5_close(fids[i]);
    ns_free(fids);
    ns_sb_release(&c.vars);
    return st;
}
