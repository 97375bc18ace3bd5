/*
 * Architecture presets.  A preset expands to a plain architecture string in
 * the grammar of ns_net_build; `norm` marks the normalization slots that
 * `--norm` fills.
 */
#include "normscope/nn.h"

#include <stdlib.h>
#include <string.h>

/* The presets, listed for --help and by name; ns_arch_expand expands them. */
static const char *presets =
    "mlp[:WxD] (784-512-512-10), deepmlp[:WxD] (50 hidden layers of 512), cnn, "
    "vgg11-s, vgg16-s, resnet8, resnet20";
static const char *const names[] = {"mlp", "deepmlp", "cnn", "vgg11-s", "vgg16-s",
                                    "resnet8", "resnet20"};

const char *ns_arch_presets(void)
{
    return presets;
}

static int append(char *buf, size_t len, const char *s)
{
    size_t used = strlen(buf);
    if (used + strlen(s) + 2 > len)
        return ns_error(NS_EINVAL, "architecture too long");
    if (used)
        strcat(buf, ",");
    strcat(buf, s);
    return NS_OK;
}

/* "WxD" after "name:"; defaults when absent. */
static int parse_wxd(const char *arch, const char *args, size_t *w, size_t *d)
{
    if (!args)
        return NS_OK;
    char *end;
    long ww = strtol(args, &end, 10);
    if (end == args || *end != 'x')
        return ns_error(NS_EINVAL, "bad architecture '%s': expected WIDTHxDEPTH after ':'", arch);
    const char *ds = end + 1;
    long dd = strtol(ds, &end, 10);
    if (end == ds || *end || ww <= 0 || dd <= 0 || ww > 1 << 20 || dd > 10000)
        return ns_error(NS_EINVAL, "bad architecture '%s': expected positive WIDTHxDEPTH", arch);
    *w = (size_t)ww;
    *d = (size_t)dd;
    return NS_OK;
}

static int expand_mlp(const char *arch, const char *args, size_t w, size_t d,
                      char *buf, size_t len)
{
    int st = parse_wxd(arch, args, &w, &d);
    char tok[64];
    buf[0] = '\0';
    for (size_t i = 0; !st && i < d; i++) {
        snprintf(tok, sizeof tok, "fc:%zu,norm,relu", w);
        st = append(buf, len, tok);
    }
    return st ? st : append(buf, len, "fc:out");
}

static int expand_vgg(const int *cfg, size_t ncfg, char *buf, size_t len)
{
    char tok[64];
    buf[0] = '\0';
    int st = NS_OK;
    for (size_t i = 0; !st && i < ncfg; i++) {
        if (cfg[i] == 0)
            snprintf(tok, sizeof tok, "maxpool:2");
        else
            snprintf(tok, sizeof tok, "conv3x3:%d,norm,relu", cfg[i]);
        st = append(buf, len, tok);
    }
    return st ? st : append(buf, len, "gap,fc:out");
}

static int expand_resnet(size_t blocks, char *buf, size_t len)
{
    char tok[64];
    buf[0] = '\0';
    int st = append(buf, len, "conv3x3:16,norm,relu");
    static const int width[3] = {16, 32, 64};
    for (int s = 0; s < 3 && !st; s++)
        for (size_t b = 0; b < blocks && !st; b++) {
            if (s > 0 && b == 0)
                snprintf(tok, sizeof tok, "res:%d/2", width[s]);
            else
                snprintf(tok, sizeof tok, "res:%d", width[s]);
            st = append(buf, len, tok);
        }
    return st ? st : append(buf, len, "gap,fc:out");
}

/* 1 when the token t[0..n) names a preset, with or without ":ARGS". */
static int names_preset(const char *t, size_t n)
{
    const char *colon = memchr(t, ':', n);
    size_t nl = colon ? (size_t)(colon - t) : n;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strlen(names[i]) == nl && !strncmp(t, names[i], nl))
            return 1;
    return 0;
}

int ns_arch_expand(const char *arch, char *buf, size_t len)
{
    /* A preset is the whole string; in a list of layers it is no layer. */
    for (const char *t = arch; strchr(arch, ',');) {
        size_t n = strcspn(t, ",");
        if (names_preset(t, n))
            return ns_error(NS_EINVAL, "bad architecture token '%.*s': a preset cannot be "
                            "combined with layers (use it alone or write out its layers)",
                            (int)n, t);
        if (!t[n])
            break;
        t += n + 1;
    }
    char name[64];
    const char *colon = strchr(arch, ',') ? NULL : strchr(arch, ':');
    size_t nl = colon ? (size_t)(colon - arch) : strlen(arch);
    if (nl >= sizeof name)
        nl = sizeof name - 1;
    memcpy(name, arch, nl);
    name[nl] = '\0';
    const char *args = colon ? colon + 1 : NULL;
    if (strcmp(name, "mlp") == 0)
        return expand_mlp(arch, args, 512, 2, buf, len);
    if (strcmp(name, "deepmlp") == 0)
        return expand_mlp(arch, args, 512, 50, buf, len);
    if (args == NULL) {
        static const int vgg11[] = {16, 0, 32, 0, 64, 64, 0, 128, 128, 0, 128, 128};
        static const int vgg16[] = {16, 16, 0, 32, 32, 0, 64, 64, 64, 0,
                                    128, 128, 128, 0, 128, 128, 128};
        if (strcmp(name, "cnn") == 0) {
            buf[0] = '\0';
            return append(buf, len, "conv3x3:32,norm,relu,conv3x3:64/2,norm,relu,"
                                    "conv3x3:128/2,norm,relu,gap,fc:out");
        }
        if (strcmp(name, "vgg11-s") == 0)
            return expand_vgg(vgg11, sizeof vgg11 / sizeof *vgg11, buf, len);
        if (strcmp(name, "vgg16-s") == 0)
            return expand_vgg(vgg16, sizeof vgg16 / sizeof *vgg16, buf, len);
        if (strcmp(name, "resnet8") == 0)
            return expand_resnet(1, buf, len);
        if (strcmp(name, "resnet20") == 0)
            return expand_resnet(3, buf, len);
    }
    if (strlen(arch) + 1 > len)
        return ns_error(NS_EINVAL, "architecture too long");
    snprintf(buf, len, "%s", arch);
    return NS_OK;
}
