/*
 * Softmax cross-entropy (nn.CrossEntropyLoss with mean reduction), computed
 * with the log-sum-exp shift; the loss is accumulated in double.
 */
#include "normscope/nn.h"

#include <math.h>

void ns_softmax_ce(const ns_real *logits, const int32_t *y, size_t n, size_t k,
                   ns_real *dlogits, double *loss, size_t *correct)
{
    double total = 0;
    size_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        const ns_real *z = logits + i * k;
        size_t am = 0;
        for (size_t j = 1; j < k; j++)
            if (z[j] > z[am])
                am = j;
        hits += am == (size_t)y[i];
        double mx = z[am], s = 0;
        for (size_t j = 0; j < k; j++)
            s += exp((double)z[j] - mx);
        double lse = mx + log(s);
        total += lse - z[y[i]];
        if (dlogits) {
            ns_real *d = dlogits + i * k;
            for (size_t j = 0; j < k; j++)
                d[j] = (ns_real)((exp((double)z[j] - lse) - (j == (size_t)y[i])) / n);
        }
    }
    *loss = total / (double)n;
    if (correct)
        *correct = hits;
}
