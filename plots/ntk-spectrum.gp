# normscope: NTK eigenvalue spectra of `normscope ntk` result files
# (`normscope plot NTK.h5 ... --what ntk-spectrum -o DIR`): eigenvalues
# against their rank on log-log axes, one colour per checkpoint from early
# (dark blue) to late (light orange); left the eigenvalues, right divided by
# the largest (lambda_i / lambda_1), which compares the shape of spectra of
# different scale.  One row of the two panels per file, on shared axes.
#
# Variables from normscope: datadir, out, fmt, scriptdir; nfiles, labels and
# descs ('|'-separated: legend labels, panel titles), notes ('|'-separated,
# per file: top eigenvalues only, checkpoints without eigenvalues), nsteps
# (checkpoints drawn per file, space-separated), stepnames (the steps of
# all files in order), maxrank, evlo, evhi (positive eigenvalue range),
# rello (lowest positive lambda_i / lambda_1).
# Data: datadir/spec<f>.dat, one block per checkpoint (gnuplot index k),
# rows: rank lambda lambda/lambda_1 (NaN where not positive).
# To redraw by hand:
#   gnuplot -e "datadir='DIR/ntk-spectrum-data'; out='x.png'; fmt='png'; \
#               scriptdir='plots'; nfiles=1; labels='run.h5'; descs='run.h5'; \
#               notes=''; nsteps='4'; stepnames='0 24 48 72'; maxrank=320; \
#               evlo=4; evhi=2e4; rello=2e-3" plots/ntk-spectrum.gp

rowh = 430
width = 1400; height = (nfiles > 1 ? 90 + rowh * nfiles : 560)
load scriptdir . '/common.gp'

field(s, i) = (i <= 1) ? (strstrt(s, '|') ? s[1:strstrt(s, '|') - 1] : s) \
                       : (strstrt(s, '|') ? field(s[strstrt(s, '|') + 1:], i - 1) : '')
ns(f) = int(word(nsteps, f))
off(f) = (f <= 1) ? 0 : off(f - 1) + ns(f - 1)
stepname(f, k) = word(stepnames, off(f) + k + 1)
sfile(f) = sprintf('%s/spec%d.dat', datadir, f)
note(f) = field(notes, f)
# early checkpoints dark blue, late ones light orange
shade(f, k) = (ns(f) > 1) ? 1.0 * k / (ns(f) - 1) : 0.0
rgbof(t) = sprintf('#%02x%02x%02x', int(31 + t * (253 - 31)), int(60 + t * (174 - 60)), int(140 + t * (97 - 140)))
# Legends name at most about nine checkpoints: the first, the last and
# evenly spaced ones between.
every(f) = (ns(f) <= 10) ? 1 : int(ceil((ns(f) - 1) / 8.0))
named(f, k) = (k == 0 || k == ns(f) - 1 || k % every(f) == 0) && !(k != ns(f) - 1 && ns(f) - 1 - k < every(f) / 2.0)
steptitle(f, k) = named(f, k) ? sprintf('step %s', stepname(f, k)) : ''

# Screen fractions of the margins for the figure's height.
tm = 1 - (nfiles > 1 ? 80.0 : 75.0) / height
bm = 68.0 / height
vs = (nfiles > 1 ? 95.0 / height : 0)
set multiplot layout nfiles,2 margins 0.07,0.985,bm,tm spacing 0.08,vs \
    title 'NTK eigenvalues per checkpoint (dark: early, light: late)' . (nfiles > 1 ? '' : ': ' . descs)
set logscale xy
set format y '%.0e'
set format x '%g'
set xlabel 'rank i'
set xrange [1:(maxrank > 1 ? maxrank : 2)]
set key bottom left font ',9' samplen 2 spacing 0.9 maxrows 10
set title font ',11'

do for [f = 1:nfiles] {
    # ------------------------------------------------------- eigenvalues
    t = (nfiles > 1 ? field(descs, f) : 'lambda_i') . (strlen(note(f)) ? sprintf(' (%s)', note(f)) : '')
    set title t
    set ylabel 'eigenvalue'
    set yrange [evlo / 2:evhi * 2]
    set key bottom left font ',9' samplen 2 spacing 0.9 maxrows 10
    if (ns(f) == 0) {
        set label 1 'no eigenvalues in this file' at graph 0.5, 0.5 center textcolor rgb '#808080'
        unset key
        plot NaN notitle
        unset label 1
    } else {
        plot for [k = 0:ns(f) - 1] sfile(f) index k using 1:2 with lines \
             linecolor rgb rgbof(shade(f, k)) linewidth 1.8 title steptitle(f, k)
    }

    # ---------------------------------------------- relative to the largest
    set title (nfiles > 1 ? 'relative to the largest: lambda_i / lambda_1' : 'lambda_i / lambda_1')
    set ylabel 'lambda_i / lambda_1'
    set yrange [rello / 2:2]
    unset key
    if (ns(f) == 0) {
        set label 1 'no eigenvalues in this file' at graph 0.5, 0.5 center textcolor rgb '#808080'
        plot NaN notitle
        unset label 1
    } else {
        plot for [k = 0:ns(f) - 1] sfile(f) index k using 1:3 with lines \
             linecolor rgb rgbof(shade(f, k)) linewidth 1.8 notitle
    }
}

unset multiplot
set output
