/*
 * normscope train: trains an architecture with a normalization method and
 * writes a run file with checkpoints and history (DESIGN.md section 3).
 */
#include "cli.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "normscope/norm.h"
#include "normscope/train.h"

static const char usage_text[] =
    "usage: normscope train [options] -o RUN.h5\n"
    "       normscope train --resume RUN.h5 --epochs E [-o OUT.h5]\n"
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
    "                     threads); --epochs/--steps give the new total; writes RUN in\n"
    "                     place unless -o is given\n"
    "other:\n"
    "  --threads T        threads (default: all cores); results depend on T\n"
    "  --quiet            no progress on stderr\n"
    "  --list-norms       list normalization methods\n"
    "  -h, --help         this help\n";

enum {
    O_ARCH = 256, O_NORM, O_NORMGROUP, O_BNMOM, O_BNEPS, O_NOAFFINE, O_INIT, O_DATA,
    O_TRAINN, O_TESTN, O_NOSTD, O_OPTIM, O_LR, O_MOM, O_NEST, O_WD, O_CLIP, O_B1, O_B2,
    O_AEPS, O_SCHED, O_WARMUP, O_EPOCHS, O_STEPS, O_BATCH, O_SEED, O_FORCE, O_CKEVERY,
    O_CKSTEPS, O_RESUME, O_THREADS, O_QUIET, O_LISTNORMS, O_HELPNORM, O_GNG, O_PSA,
    O_FCT, O_FRNEPS, O_FRNRELU, O_WMALL, O_RESSCALE, O_BRNW, O_BRNR, O_ICDROP, O_MABNB, O_MABNR, O_MABNW, O_AGC, O_BKNP, O_BKNS, O_BKNPRED, O_BKNGRAD, O_PNW
};

static const struct option options[] = {
    {"arch", required_argument, NULL, O_ARCH},
    {"norm", required_argument, NULL, O_NORM},
    {"norm-group", required_argument, NULL, O_NORMGROUP},
    {"bn-momentum", required_argument, NULL, O_BNMOM},
    {"bn-eps", required_argument, NULL, O_BNEPS},
    {"no-bn-affine", no_argument, NULL, O_NOAFFINE},
    {"init", required_argument, NULL, O_INIT},
    {"data", required_argument, NULL, O_DATA},
    {"train-n", required_argument, NULL, O_TRAINN},
    {"test-n", required_argument, NULL, O_TESTN},
    {"no-standardize", no_argument, NULL, O_NOSTD},
    {"optim", required_argument, NULL, O_OPTIM},
    {"lr", required_argument, NULL, O_LR},
    {"momentum", required_argument, NULL, O_MOM},
    {"nesterov", no_argument, NULL, O_NEST},
    {"wd", required_argument, NULL, O_WD},
    {"clip", required_argument, NULL, O_CLIP},
    {"beta1", required_argument, NULL, O_B1},
    {"beta2", required_argument, NULL, O_B2},
    {"adam-eps", required_argument, NULL, O_AEPS},
    {"schedule", required_argument, NULL, O_SCHED},
    {"warmup", required_argument, NULL, O_WARMUP},
    {"epochs", required_argument, NULL, O_EPOCHS},
    {"steps", required_argument, NULL, O_STEPS},
    {"batch", required_argument, NULL, O_BATCH},
    {"seed", required_argument, NULL, O_SEED},
    {"output", required_argument, NULL, 'o'},
    {"force", no_argument, NULL, O_FORCE},
    {"ckpt-every", required_argument, NULL, O_CKEVERY},
    {"ckpt-steps", required_argument, NULL, O_CKSTEPS},
    {"resume", required_argument, NULL, O_RESUME},
    {"threads", required_argument, NULL, O_THREADS},
    {"quiet", no_argument, NULL, O_QUIET},
    {"list-norms", no_argument, NULL, O_LISTNORMS},
    {"help-norm", required_argument, NULL, O_HELPNORM},
    {"gn-groups", required_argument, NULL, O_GNG},
    {"psbn-alpha", required_argument, NULL, O_PSA},
    {"fct", required_argument, NULL, O_FCT},
    {"frn-eps", required_argument, NULL, O_FRNEPS},
    {"frn-relu", no_argument, NULL, O_FRNRELU},
    {"wm-all", no_argument, NULL, O_WMALL},
    {"brn-warmup", required_argument, NULL, O_BRNW},
    {"ic-drop", required_argument, NULL, O_ICDROP},
    {"mabn-buffer", required_argument, NULL, O_MABNB},
    {"mabn-real-batch", required_argument, NULL, O_MABNR},
    {"agc", required_argument, NULL, O_AGC},
    {"bkn-p", required_argument, NULL, O_BKNP},
    {"pn-warmup", required_argument, NULL, O_PNW},
    {"bkn-samples", required_argument, NULL, O_BKNS},
    {"bkn-predict", required_argument, NULL, O_BKNPRED},
    {"bkn-grad", required_argument, NULL, O_BKNGRAD},
    {"mabn-warmup", required_argument, NULL, O_MABNW},
    {"brn-ramp", required_argument, NULL, O_BRNR},
    {"res-scale", required_argument, NULL, O_RESSCALE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

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
    int force = 0, epochs_set = 0, steps_set = 0, init_set = 0, lr_set = 0, warmup_set = 0,
        clip_set = 0;
    uint64_t u;
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":o:h", options, NULL)) != -1) {
        int bad = 0;
        switch (opt) {
        case O_ARCH: snprintf(c.arch, sizeof c.arch, "%s", optarg); break;
        case O_NORM:
            if (!ns_norm_find(optarg))
                return ns_cli_usage_error("train", "unknown normalization method '%s' "
                                          "(see 'normscope train --list-norms')", optarg);
            snprintf(c.net.norm, sizeof c.net.norm, "%s", optarg);
            break;
        case O_NORMGROUP: bad = ns_cli_size("train", "--norm-group", optarg, &c.net.norm_group); break;
        case O_BNMOM: bad = ns_cli_double("train", "--bn-momentum", optarg, &c.net.bn_momentum); break;
        case O_BNEPS: bad = ns_cli_double("train", "--bn-eps", optarg, &c.net.bn_eps); break;
        case O_NOAFFINE: c.net.bn_affine = 0; break;
        case O_INIT:
            init_set = 1;
            if (ns_parse_init(optarg, &c.init))
                return ns_cli_usage_error("train", "%s", ns_errmsg());
            break;
        case O_DATA: snprintf(c.data, sizeof c.data, "%s", optarg); break;
        case O_TRAINN: bad = ns_cli_size("train", "--train-n", optarg, &c.train_n); break;
        case O_TESTN: bad = ns_cli_size("train", "--test-n", optarg, &c.test_n); break;
        case O_NOSTD: c.standardize = 0; break;
        case O_OPTIM:
            if (ns_parse_optim(optarg, &c.optim))
                return ns_cli_usage_error("train", "%s", ns_errmsg());
            break;
        case O_LR: bad = ns_cli_double("train", "--lr", optarg, &c.lr); lr_set = 1; break;
        case O_MOM: bad = ns_cli_double("train", "--momentum", optarg, &c.momentum); break;
        case O_NEST: c.nesterov = 1; break;
        case O_WD: bad = ns_cli_double("train", "--wd", optarg, &c.wd); break;
        case O_CLIP: bad = ns_cli_double("train", "--clip", optarg, &c.clip); clip_set = 1; break;
        case O_B1: bad = ns_cli_double("train", "--beta1", optarg, &c.beta1); break;
        case O_B2: bad = ns_cli_double("train", "--beta2", optarg, &c.beta2); break;
        case O_AEPS: bad = ns_cli_double("train", "--adam-eps", optarg, &c.adam_eps); break;
        case O_SCHED:
            if (ns_parse_schedule(optarg, &c))
                return ns_cli_usage_error("train", "%s", ns_errmsg());
            break;
        case O_WARMUP:
            bad = ns_cli_size("train", "--warmup", optarg, &c.warmup);
            warmup_set = 1;
            break;
        case O_EPOCHS: bad = ns_cli_size("train", "--epochs", optarg, &c.epochs); epochs_set = 1; break;
        case O_STEPS: bad = ns_cli_size("train", "--steps", optarg, &c.steps); steps_set = 1; break;
        case O_BATCH: bad = ns_cli_size("train", "--batch", optarg, &c.batch); break;
        case O_SEED: bad = ns_cli_u64("train", "--seed", optarg, &u); c.seed = u; break;
        case 'o': out = optarg; break;
        case O_FORCE: force = 1; break;
        case O_CKEVERY: bad = ns_cli_size("train", "--ckpt-every", optarg, &c.ckpt_every); break;
        case O_CKSTEPS: bad = parse_steps(&c, optarg); break;
        case O_RESUME: resume = optarg; break;
        case O_THREADS: bad = ns_cli_threads("train", optarg, &c.threads); break;
        case O_QUIET: ns_progress_set_quiet(1); break;
        case O_LISTNORMS: list_norms(); return NS_EXIT_OK;
        case O_HELPNORM: {
            const ns_norm_method *m = ns_norm_find(optarg);
            if (!m)
                return ns_cli_usage_error("train", "unknown normalization method '%s' "
                                          "(see 'normscope train --list-norms')", optarg);
            printf("%s: %s\nreference: %s\noptions: %s\ndefault lr: %g\ndefault warm-up: "
                   "%zu steps\ndefault gradient clipping: ", m->name, m->summary, m->reference,
                   m->options ? m->options : "none", m->lr > 0 ? m->lr : 0.05, m->warmup);
            if (m->clip > 0)
                printf("global norm %g\n", m->clip);
            else
                printf("none\n");
            return NS_EXIT_OK;
        }
        case O_GNG: bad = ns_cli_size("train", "--gn-groups", optarg, &c.net.gn_groups); break;
        case O_PSA: bad = ns_cli_double("train", "--psbn-alpha", optarg, &c.net.psbn_alpha); break;
        case O_FCT: bad = ns_cli_double("train", "--fct", optarg, &c.net.fct); break;
        case O_FRNEPS: bad = ns_cli_double("train", "--frn-eps", optarg, &c.net.frn_eps); break;
        case O_FRNRELU: c.net.frn_relu = 1; break;
        case O_WMALL: c.net.wm_all = 1; break;
        case O_PNW: bad = ns_cli_size("train", "--pn-warmup", optarg, &c.net.pn_warmup); break;
        case O_BKNP: bad = ns_cli_double("train", "--bkn-p", optarg, &c.net.bkn_p); break;
        case O_BKNS: bad = ns_cli_size("train", "--bkn-samples", optarg, &c.net.bkn_samples); break;
        case O_BKNPRED: {
            ns_bkn_predict mode;
            if (ns_bkn_parse_predict(optarg, &mode))
                return ns_cli_usage_error("train", "--bkn-predict is group or last, got '%s'", optarg);
            c.net.bkn_predict = (int)mode;
            break;
        }
        case O_BKNGRAD:
            if (!strcmp(optarg, "none")) c.net.bkn_grad = 0;
            else if (!strcmp(optarg, "full")) c.net.bkn_grad = 1;
            else return ns_cli_usage_error("train", "--bkn-grad is none or full, got '%s'", optarg);
            break;
        case O_AGC: bad = ns_cli_double("train", "--agc", optarg, &c.net.agc); break;
        case O_MABNB: bad = ns_cli_size("train", "--mabn-buffer", optarg, &c.net.mabn_buffer); break;
        case O_MABNR: bad = ns_cli_size("train", "--mabn-real-batch", optarg, &c.net.mabn_real_batch); break;
        case O_MABNW: bad = ns_cli_size("train", "--mabn-warmup", optarg, &c.net.mabn_warmup); break;
        case O_ICDROP: bad = ns_cli_double("train", "--ic-drop", optarg, &c.net.ic_drop); break;
        case O_BRNW: bad = ns_cli_size("train", "--brn-warmup", optarg, &c.net.brn_warmup); break;
        case O_BRNR: bad = ns_cli_size("train", "--brn-ramp", optarg, &c.net.brn_ramp); break;
        case O_RESSCALE:
            if (!strcmp(optarg, "paper")) c.net.res_scale_paper = 1;
            else if (!strcmp(optarg, "code")) c.net.res_scale_paper = 0;
            else return ns_cli_usage_error("train", "--res-scale is paper or code, got '%s'", optarg);
            break;
        case 'h': printf(usage_text, ns_arch_presets()); return NS_EXIT_OK;
        default: return ns_cli_bad_option("train", options, opt, argv);
        }
        if (bad)
            return NS_EXIT_USAGE;
    }
    if (optind < argc)
        return ns_cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
    if (steps_set && !epochs_set)
        c.epochs = 0;
    /* The method's own defaults (a resumed run keeps its configuration). */
    const ns_norm_method *method = ns_norm_find(c.net.norm);
    if (!init_set && (method->flags & NS_NORM_MIMIC_INIT))
        c.init.kind = NS_INIT_MIMIC;
    if (!lr_set && !resume && method->lr > 0)
        c.lr = method->lr;
    if (!warmup_set && !resume)
        c.warmup = method->warmup;
    if (!clip_set && !resume)
        c.clip = method->clip;
    if (resume && !out)
        out = resume;
    if (!out)
        return ns_cli_usage_error("train", "no output file given (use -o RUN.h5)");
    if (resume && !epochs_set && !steps_set)
        return ns_cli_usage_error("train", "--resume needs the new length (--epochs or --steps)");
    if (!resume && ns_train_config_check(&c))
        return ns_cli_usage_error("train", "%s", ns_errmsg());
    /* The architecture is checked before any data is read. */
    if (!resume) {
        char buf[4096];
        if (ns_arch_expand(c.arch, buf, sizeof buf))
            return ns_cli_usage_error("train", "%s", ns_errmsg());
    }
    ns_train_result r;
    int st = ns_train(&c, resume, out, force || (resume && !strcmp(resume, out)),
                      ns_cli_cmdline(), &r);
    if (st && st != NS_ENUMERIC)
        return ns_cli_fail(st, NULL);
    printf("run file: %s\n", out);
    printf("arch %s, norm %s, data %s, %zu steps, seed %llu\n", c.arch, c.net.norm,
           c.data, r.steps, (unsigned long long)c.seed);
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
