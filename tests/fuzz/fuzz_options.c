/*
 * libFuzzer harness of option parsing: the bytes are an INI text (libinih,
 * as recipes will be read), each key set as the command line sets it:
 * arch, norm and data as strings, optim, schedule and init through their
 * parsers, every other key through the option tables: the training
 * table's and every method's (ns_train_opt_find / ns_train_opt_parse: a
 * number, or a choice's name); then the whole configuration is checked.  A
 * configuration that passes ns_train_config_check must hold only values the
 * tables accept, the ones /config loading accepts.
 */
#include "fuzz_util.h"

#include <ini.h>
#include <math.h>

#include "normscope/train.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    ns_train_config *c = user;
    (void)section;
    if (!strcmp(name, "arch"))
        snprintf(c->arch, sizeof c->arch, "%s", value);
    else if (!strcmp(name, "norm"))
        snprintf(c->net.norm, sizeof c->net.norm, "%s", value);
    else if (!strcmp(name, "optim"))
        ns_parse_optim(value, &c->optim);
    else if (!strcmp(name, "schedule"))
        ns_parse_schedule(value, c);
    else if (!strcmp(name, "init"))
        ns_parse_init(value, &c->init);
    else {
        const ns_train_opt *o = ns_train_opt_find(name);
        if (o && o->option)
            ns_train_opt_parse(o, value, c);
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_setup();
    char *text = fuzz_string(data, size, 1 << 14);
    if (!text)
        return 0;
    ns_train_config c;
    ns_train_config_default(&c);
    ini_parse_string(text, on_key, &c);
    if (ns_train_config_check(&c) == NS_OK) {
        char why[256];
        for (size_t i = 0; i < ns_train_setting_count(); i++) {
            const ns_train_opt *o = ns_train_setting_at(i);
            double v = ns_train_opt_get(o, &c);
            if (!isfinite(v) || ns_train_opt_check(o, v, 0, why, sizeof why) != 0)
                abort();
        }
    }
    free(text);
    return 0;
}
