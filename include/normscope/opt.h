/*
 * normscope option declarations: one entry describes one setting, the
 * command-line option that takes it, its /config key, its type, default,
 * range and help text, and where it lives in its struct.  The training
 * settings are one table (src/train/config.c); each normalization method
 * declares its own options in its source file and its registry entry points
 * to them (norm.h).  `train`, `--help-norm`, /config saving, loading and
 * checking, and the defaults of ns_net_opts are all driven from these
 * entries, so that an option is declared in one place.
 */
#ifndef NORMSCOPE_OPT_H
#define NORMSCOPE_OPT_H

#include "normscope/core.h"

/* The longest run the command line accepts, in steps: the bound of every
 * length and warm-up counted in steps. */
#define NS_OPT_MAX_STEPS 1e9

/* The type of a setting's field.  Every value must be finite; integers are
 * whole numbers (decimal digits on the command line).  A choice is an
 * NS_OPT_INT whose values have names (ns_opt.choices). */
typedef enum ns_opt_type {
    NS_OPT_DOUBLE,   /* double */
    NS_OPT_SIZE,     /* size_t */
    NS_OPT_INT,      /* int (flags 0/1, thread count, choices) */
    NS_OPT_U64       /* uint64_t, any value (the seed) */
} ns_opt_type;

enum ns_opt_flags {
    NS_OPT_MIN_OPEN = 1,  /* value > min (otherwise >= min) */
    NS_OPT_MAX_OPEN = 2,  /* value < max (otherwise <= max) */
    NS_OPT_UNSET = 4,     /* `unset` is also accepted, from /config and the API but not
                             on the command line: "the default" (threads 0: all cores) */
    NS_OPT_OLD = 8,       /* may be missing from /config (added after format version 1):
                             such a run loads with `old` */
    NS_OPT_NET = 16,      /* offset is into ns_net_opts (c->net), not ns_train_config:
                             every method option */
    NS_OPT_BY_NAME = 32   /* a choice stored in /config as its name, not its number */
};

/* One named value of a choice: "group" is NS_BKN_PREDICT_GROUP. */
typedef struct ns_opt_choice {
    const char *name;
    int value;
} ns_opt_choice;

typedef struct ns_opt {
    const char *option;   /* "--adam-eps", taking a value (a number, or a choice's name);
                             NULL for a setting without one */
    const char *key;      /* its /config attribute: "adam_eps" */
    ns_opt_type type;
    double min, max;      /* the range (+-INFINITY: unbounded on that side, finite);
                             a choice accepts its values instead */
    unsigned flags;       /* ns_opt_flags */
    double unset;         /* with NS_OPT_UNSET */
    size_t offset;        /* offsetof the field */
    double def;           /* the default */
    double old;           /* with NS_OPT_OLD: the value of runs written before the key
                             existed (what they trained with; mostly def) */
    const ns_opt_choice *choices;  /* a choice's values, in the order help and messages
                                      name them; NULL for a number */
    size_t nchoices;
    const char *flag;     /* an option without value that sets the 0/1 field to 1 - def:
                             "--frn-relu", "--no-bn-affine" (option is then NULL) */
    const char *arg;      /* the value's name in help: "P" (a choice: its names) */
    const char *help;     /* what it does, for --help-norm (NULL in the training table,
                             which `train --help` describes) */
} ns_opt;

/* A method's options: n entries from opt. */
typedef struct ns_opt_table {
    const ns_opt *opt;
    size_t n;
} ns_opt_table;

/* The field of o in base (the struct its offset is into: ns_net_opts for
 * NS_OPT_NET entries), as a double; ns_opt_set stores v, which must be
 * acceptable (ns_opt_check). */
double ns_opt_get(const ns_opt *o, const void *base);
void ns_opt_set(const ns_opt *o, void *base, double v);
/* Stores the default of each of the n entries of opt in base. */
void ns_opt_defaults(const ns_opt *opt, size_t n, void *base);

/* 0 when v is acceptable for o (unset counts unless cli), else -1 with why
 * receiving the problem without the subject: "must be an integer in
 * 1..65536, got 0", "must be a finite number > 0, got -inf", "must be 0 or
 * 1, got 2" (a choice: its numbers, or with cli or NS_OPT_BY_NAME its
 * names). */
int ns_opt_check(const ns_opt *o, double v, int cli, char *why, size_t len);
/* What o accepts, to follow "must be ": "an integer in 1..65536", "a
 * number in [0, 1)", "a finite number > 0", with " or -1" for the unset
 * value unless cli; a choice's names ("group or last") with cli or
 * NS_OPT_BY_NAME, else its numbers ("0 or 1"). */
void ns_opt_range(const ns_opt *o, int cli, char *buf, size_t len);
/* A value as help and messages show it: a choice's name, "on"/"off" for a
 * flag, a number otherwise ("0.1", "1e-05", "10000"). */
void ns_opt_value_text(const ns_opt *o, double v, char *buf, size_t len);

/* Parses a command-line value strictly (a whole number for integers:
 * decimal digits only; a number for doubles; one of the names for a
 * choice), checks it and stores it in base.  NS_EINVAL naming the option:
 * "--adam-eps must be a finite number > 0, got '-1'", "--epochs expects a
 * non-negative integer, got 'many'", "--bkn-predict is group or last, got
 * 'first'". */
int ns_opt_parse(const ns_opt *o, const char *s, void *base);

/* The value of a choice's name; -1 when s names none. */
int ns_opt_choice_value(const ns_opt *o, const char *s, int *value);
/* The name of a choice's value; NULL when v is none of its values. */
const char *ns_opt_choice_name(const ns_opt *o, double v);

#endif
