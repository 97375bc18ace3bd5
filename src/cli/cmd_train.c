/*
 * normscope train: trains an architecture with a normalization method and
 * writes a run file with checkpoints and history (DESIGN.md section 3).
 */
#include "cli.h"

#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "normscope/norm.h"
#include "normscope/train.h"

static const char usage_text[] =
    "usage: normscope train [options] -o RUN.h5\n"
    "       normscope train --resume RUN.h5 [--epochs E | --steps S] [-o OUT.h5]\n"
    "\n"
    "Trains a network and writes a run file: configuration, checkpoints of\n"
    "parameters and running statistics (step 0 is the initialisation), and the\n"
    "per-step and per-epoch history.  Progress goes to stderr, a summary to stdout.\n"
    "\n"
    "model:\n"
    "  --arch A           preset or architecture string (default mlp); presets:\n"
    "                     %s\n"
    "                     strings: e.g. conv3x3:32,norm,relu,conv3x3:64/2,norm,relu,gap,fc:out\n"
    "  --norm NAME        method in every normalization slot (default bn); --list-norms\n"
    "  --norm-group S     normalise in groups of S samples (ghost batch; default: whole batch)\n"
    "  --bn-momentum M    running-statistics momentum (default 0.1)\n"
    "  --bn-eps E         variance epsilon (default 1e-5)\n"
    "  --no-bn-affine     BN without gamma and beta\n"
    "  --help-norm NAME   what a method does and the options it reads\n"
    "  --init I           torch (default), he-normal, he-uniform, xavier, gauss:SW2,SB2,\n"
    "                     mimic (N(0, 2/((n-1)(1-1/pi))); the default of mimic and wm)\n"
    "  --gn-groups G --psbn-alpha A --fct TAU --frn-eps E --frn-relu --wm-all\n"
    "  --res-scale paper|code\n"
    "  --brn-warmup S --brn-ramp S --ic-drop P --mabn-real-batch R --mabn-buffer S\n"
    "  --mabn-warmup N --agc LAMBDA --bkn-p P --bkn-samples K --bkn-predict group|last\n"
    "  --bkn-grad full|none --pn-warmup S\n"
    "                     options of methods (--help-norm NAME says which reads what)\n"
    "data:\n"
    "  --data D           fashion-mnist (default), idx:DIR, cifar10:DIR, FILE.h5,\n"
    "                     gauss:K:D[:N], spirals, moons, rings, xor\n"
    "  --train-n N        use the first N training samples (default all)\n"
    "  --test-n N         use the first N test samples (default all)\n"
    "  --no-standardize   keep raw inputs (default: per-channel standardisation with\n"
    "                     the training split's mean and std)\n"
    "optimisation:\n"
    "  --optim O          sgd (default), adam, adamw\n"
    "  --lr LR            learning rate (default 0.05, or the method's own: --help-norm)\n"
    "  --momentum M       SGD momentum (default 0.9)\n"
    "  --nesterov         Nesterov momentum\n"
    "  --wd W             weight decay (default 0)\n"
    "  --clip N           clip the gradient to global norm N (default 0: off, or the\n"
    "                     method's own)\n"
    "  --beta1 B --beta2 B --adam-eps E   Adam settings (0.9, 0.999, 1e-8)\n"
    "  --schedule S       cosine (default: annealed to 0 over the run), const,\n"
    "                     step:E1,E2[@GAMMA] (epochs)\n"
    "  --warmup N         linear warm-up over N steps (default 0, or the method's own)\n"
    "  --epochs E         epochs (default 3)\n"
    "  --steps S          train for S steps instead of whole epochs\n"
    "  --batch B          mini-batch size (default 128)\n"
    "  --seed S           seed of initialisation, shuffling and dropout (default 1)\n"
    "run file:\n"
    "  -o, --output PATH  run file to write (refuses an existing file)\n"
    "  --force            overwrite an existing output file\n"
    "  --ckpt-every E     checkpoint every E epochs (default 1; 0: first and last only)\n"
    "  --ckpt-steps S,..  also checkpoint after these steps\n"
    "  --resume RUN       continue a run from its last checkpoint, bit for bit (same\n"
    "                     threads): an interrupted run to the length it was started\n"
    "                     with, or to a new total given by --epochs/--steps; writes\n"
    "                     RUN in place unless -o is given\n"
    "other:\n"
    "  --threads T        threads (default: all cores); results depend on T\n"
    "  --quiet            no progress on stderr\n"
    "  --list-norms       list normalization methods\n"
    "  -h, --help         this help\n";

enum {
    O_ARCH = 256, O_NORM, O_INIT, O_DATA, O_OPTIM, O_SCHED, O_FORCE, O_CKSTEPS, O_RESUME,
    O_QUIET, O_LISTNORMS, O_HELPNORM,
    O_TABLE = 1024   /* + the index of a setting (ns_train_setting_at) */
};

/* Options that are not settings of the option tables; the settings (the
 * training table's and every method's) come from the tables, which check
 * their values. */
static const struct option fixed[] = {
    {"arch", required_argument, NULL, O_ARCH},
    {"norm", required_argument, NULL, O_NORM},
    {"init", required_argument, NULL, O_INIT},
    {"data", required_argument, NULL, O_DATA},
    {"optim", required_argument, NULL, O_OPTIM},
    {"schedule", required_argument, NULL, O_SCHED},
    {"output", required_argument, NULL, 'o'},
    {"force", no_argument, NULL, O_FORCE},
    {"ckpt-steps", required_argument, NULL, O_CKSTEPS},
    {"resume", required_argument, NULL, O_RESUME},
    {"quiet", no_argument, NULL, O_QUIET},
    {"list-norms", no_argument, NULL, O_LISTNORMS},
    {"help-norm", required_argument, NULL, O_HELPNORM},
    {"help", no_argument, NULL, 'h'},
};

enum { MAX_OPTIONS = 128 };
static struct option options[MAX_OPTIONS + 1];

/* getopt_long's table: the options above, then the settings': one taking
 * a value, or a flag without one. */
static void build_options(void)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        options[n++] = fixed[i];
    const ns_opt *o;
    for (size_t i = 0; (o = ns_train_setting_at(i)) && n < MAX_OPTIONS; i++) {
        if (o->option)
            options[n++] = (struct option){o->option + 2, required_argument, NULL,
                                           O_TABLE + (int)i};
        else if (o->flag)
            options[n++] = (struct option){o->flag + 2, no_argument, NULL, O_TABLE + (int)i};
    }
    options[n] = (struct option){NULL, 0, NULL, 0};
}

/* 1 when the option `name` of a setting was on the command line. */
static int given(const unsigned char *set, const char *name)
{
    const ns_opt *o = ns_train_opt_find(name);
    for (size_t i = 0; i < MAX_OPTIONS && ns_train_setting_at(i); i++)
        if (ns_train_setting_at(i) == o)
            return set[i];
    return 0;
}

/* SIGINT and SIGTERM, for the whole command: the first asks ns_train to
 * stop after its step and save a resumable run; the run file is never cut
 * short, so later ones only say that the save is under way. */
static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
    (void)sig;
    if (stop_signal) {
        static const char msg[] = "normscope: saving; please wait\n";
        ssize_t k = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)k;
    }
    stop_signal = 1;
}

static void catch_stop(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Prints text from column `indent` of lines up to 79 columns, words
 * wrapped; the first line continues after `col` columns already printed. */
static void wrap(const char *text, size_t col, size_t indent)
{
    const size_t width = 79;
    const char *p = text;
    while (*p) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        if (!n)
            break;
        if (col > indent && col + 1 + n > width) {
            printf("\n%*s", (int)indent, "");
            col = indent;
        } else if (col > indent) {
            putchar(' ');
            col++;
        } else {
            printf("%*s", (int)(indent - col), "");
            col = indent;
        }
        printf("%.*s", (int)n, p);
        col += n;
        p += n;
    }
    putchar('\n');
}

/* One option of --help-norm: the option and its value, then what it does,
 * its default and what it accepts, from its declaration. */
static void help_option(const ns_opt *o)
{
    char head[128], def[64], range[256], text[2048];
    if (o->flag) {
        snprintf(head, sizeof head, "  %s", o->flag);
        snprintf(text, sizeof text, "%s", o->help ? o->help : "");
    } else {
        size_t u = (size_t)snprintf(head, sizeof head, "  %s ", o->option);
        if (o->choices)
            for (size_t k = 0; k < o->nchoices && u < sizeof head; k++)
                u += (size_t)snprintf(head + u, sizeof head - u, "%s%s", k ? "|" : "",
                                      o->choices[k].name);
        else
            snprintf(head + u, sizeof head - u, "%s", o->arg ? o->arg : "X");
        ns_opt_value_text(o, o->def, def, sizeof def);
        ns_opt_range(o, 1, range, sizeof range);
        if (o->choices)
            snprintf(text, sizeof text, "%s (default %s)", o->help ? o->help : "", def);
        else if ((o->flags & NS_OPT_UNSET) && o->def == o->unset)
            snprintf(text, sizeof text, "%s (%s)", o->help ? o->help : "", range);
        else
            snprintf(text, sizeof text, "%s (default %s; %s)", o->help ? o->help : "", def,
                     range);
    }
    size_t col = strlen(head);
    printf("%s", head);
    if (col + 2 > 24) {
        putchar('\n');
        col = 0;
    }
    wrap(text, col, 24);
}

/* --help-norm: what the method does, every option it reads, its recipe. */
static void help_norm(const ns_norm_method *m)
{
    printf("%s: %s\nreference: %s\n", m->name, m->summary, m->reference);
    if (!ns_norm_reads(m, 0))
        printf("options: none\n");
    else
        printf("options:\n");
    const ns_opt *o;
    for (size_t i = 0; (o = ns_norm_reads(m, i)); i++)
        help_option(o);
    if (m->notes) {
        printf("notes:");
        wrap(m->notes, 6, 7);
    }
    printf("default lr: %g\ndefault warm-up: %zu steps\ndefault gradient clipping: ",
           m->lr > 0 ? m->lr : 0.05, m->warmup);
    if (m->clip > 0)
        printf("global norm %g\n", m->clip);
    else
        printf("none\n");
}

static void list_norms(void)
{
    for (size_t i = 0; i < ns_norm_count(); i++) {
        const ns_norm_method *m = ns_norm_at(i);
        printf("%-8s %s [%s]\n", m->name, m->summary, m->reference);
    }
}

static int parse_steps(ns_train_config *c, const char *s)
{
    if (!ns_cli_list_ok(s)) {
        ns_cli_usage_error("train", "--ckpt-steps takes a comma-separated list of steps, got "
                           "'%s'", s);
        return -1;
    }
    char *copy = strdup(s), *save = NULL;
    if (!copy)
        return -1;
    c->nckpt_steps = 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        size_t v;
        if (c->nckpt_steps >= 64 || ns_cli_size("train", "--ckpt-steps", t, &v)) {
            free(copy);
            if (c->nckpt_steps >= 64)
                ns_cli_usage_error("train", "--ckpt-steps takes at most 64 steps");
            return -1;
        }
        c->ckpt_steps[c->nckpt_steps++] = v;
    }
    free(copy);
    return 0;
}

int cmd_train(int argc, char **argv)
{
    ns_train_config c;
    ns_train_config_default(&c);
    const char *out = NULL, *resume = NULL;
    int force = 0, init_set = 0;
    unsigned char set[MAX_OPTIONS] = {0};
    int opt;
    build_options();
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":o:h", options, NULL)) != -1) {
        const ns_opt *o = opt >= O_TABLE && opt - O_TABLE < MAX_OPTIONS
                          ? ns_train_setting_at((size_t)(opt - O_TABLE)) : NULL;
        if (o) {
            set[opt - O_TABLE] = 1;
            if (o->flag)
                ns_opt_set(o, ns_train_opt_base(o, &c), !o->def);
            else if (ns_train_opt_parse(o, optarg, &c))
                return ns_cli_usage_error("train", "%s", ns_errmsg());
            continue;
        }
        int bad = 0;
        switch (opt) {
        case O_ARCH: snprintf(c.arch, sizeof c.arch, "%s", optarg); break;
        case O_NORM:
            if (!ns_norm_find(optarg))
                return ns_cli_usage_error("train", "unknown normalization method '%s' "
                                          "(see 'normscope train --list-norms')", optarg);
            snprintf(c.net.norm, sizeof c.net.norm, "%s", optarg);
            break;
        case O_INIT:
            init_set = 1;
            if (ns_parse_init(optarg, &c.init))
                return ns_cli_usage_error("train", "%s", ns_errmsg());
            break;
        case O_DATA: snprintf(c.data, sizeof c.data, "%s", optarg); break;
        case O_OPTIM:
            if (ns_parse_optim(optarg, &c.optim))
                return ns_cli_usage_error("train", "%s", ns_errmsg());
            break;
        case O_SCHED:
            if (ns_parse_schedule(optarg, &c))
                return ns_cli_usage_error("train", "%s", ns_errmsg());
            break;
        case 'o': out = optarg; break;
        case O_FORCE: force = 1; break;
        case O_CKSTEPS: bad = parse_steps(&c, optarg); break;
        case O_RESUME: resume = optarg; break;
        case O_QUIET: ns_progress_set_quiet(1); break;
        case O_LISTNORMS: list_norms(); return NS_EXIT_OK;
        case O_HELPNORM: {
            const ns_norm_method *m = ns_norm_find(optarg);
            if (!m)
                return ns_cli_usage_error("train", "unknown normalization method '%s' "
                                          "(see 'normscope train --list-norms')", optarg);
            help_norm(m);
            return NS_EXIT_OK;
        }
        case 'h': printf(usage_text, ns_arch_presets()); return NS_EXIT_OK;
        default: return ns_cli_bad_option("train", options, opt, argv);
        }
        if (bad)
            return NS_EXIT_USAGE;
    }
    if (optind < argc)
        return ns_cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
    int epochs_set = given(set, "--epochs"), steps_set = given(set, "--steps");
    if (steps_set && !epochs_set)
        c.epochs = 0;
    /* The method's own defaults (a resumed run keeps its configuration). */
    const ns_norm_method *method = ns_norm_find(c.net.norm);
    if (!init_set && (method->flags & NS_NORM_MIMIC_INIT))
        c.init.kind = NS_INIT_MIMIC;
    if (!given(set, "--lr") && !resume && method->lr > 0)
        c.lr = method->lr;
    if (!given(set, "--warmup") && !resume)
        c.warmup = method->warmup;
    if (!given(set, "--clip") && !resume)
        c.clip = method->clip;
    if (resume && !out)
        out = resume;
    if (!out)
        return ns_cli_usage_error("train", "no output file given (use -o RUN.h5)");
    /* Without a new length a resumed run continues to the length it was
     * started with (a complete run is refused by ns_train: it has that). */
    if (resume && !epochs_set && !steps_set)
        c.epochs = c.steps = 0;
    if (!resume && ns_train_config_check(&c))
        return ns_cli_usage_error("train", "%s", ns_errmsg());
    ns_train_result r;
    catch_stop();
    int st = ns_train(&c, resume, out, force || (resume && !strcmp(resume, out)),
                      ns_cli_cmdline(), &stop_signal, &r);
    if (st && st != NS_ENUMERIC)
        return ns_cli_fail(st, NULL);
    /* What was trained: a resumed run's own configuration. */
    printf("run file: %s\n", out);
    printf("arch %s, norm %s, data %s, %zu steps, seed %llu\n", r.config.arch,
           r.config.net.norm, r.config.data, r.steps, (unsigned long long)r.config.seed);
    if (st == NS_ENUMERIC) {
        printf("diverged at step %zu (loss non-finite or above 1e6)\n", r.diverged_step);
        return ns_cli_fail(st, NULL);
    }
    printf("test accuracy %.2f%%, test loss %.4f, train loss %.4f\n",
           100 * r.final_test_acc, r.final_test_loss, r.final_train_loss);
    printf("training time %.1f s (%.0f img/s)%s\n", r.seconds, r.images_per_second,
           r.interrupted ? ", interrupted: resume with --resume" : "");
    return r.interrupted ? NS_EXIT_FAIL : NS_EXIT_OK;
}
