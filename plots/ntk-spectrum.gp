# normscope: NTK eigenvalue spectra of `normscope ntk` result files
# (`normscope plot NTK.h5 ... --what ntk-spectrum -o DIR`): eigenvalues
# against their rank (log-log), one colour per checkpoint from early (dark)
# to late (light), one dash pattern per file; right: divided by the largest.
#
# Variables from normscope: datadir, out, fmt, scriptdir; nfiles, labels
# ('|'-separated), nsteps (checkpoints per file, space-separated), stepnames
# (the steps of all files in order), maxrank, evlo, evhi.
# Data: datadir/spec<f>.dat, one block per checkpoint (gnuplot index k),
# rows: rank lambda lambda/lambda_1.

width = 1400; height = 560
load scriptdir . '/common.gp'

field(s, i) = (i <= 1) ? (strstrt(s, '|') ? s[1:strstrt(s, '|') - 1] : s) \
                       : (strstrt(s, '|') ? field(s[strstrt(s, '|') + 1:], i - 1) : '')
ns(f) = int(word(nsteps, f))
off(f) = (f <= 1) ? 0 : off(f - 1) + ns(f - 1)
stepname(f, k) = word(stepnames, off(f) + k + 1)
sfile(f) = sprintf('%s/spec%d.dat', datadir, f)
# early checkpoints dark blue, late ones light orange
shade(f, k) = (ns(f) > 1) ? 1.0 * k / (ns(f) - 1) : 1.0
rgbof(t) = sprintf('#%02x%02x%02x', int(31 + t * (253 - 31)), int(60 + t * (174 - 60)), int(140 + t * (97 - 140)))

set multiplot layout 1,2 margins 0.07,0.985,0.12,0.86 spacing 0.08,0 \
    title 'NTK eigenvalues per checkpoint (dark: early, light: late)'
set logscale xy
set format y '10^{%L}'
set format y '%.0e'
set xlabel 'rank i'
set xrange [1:(maxrank > 1 ? maxrank : 2)]
set key bottom left font ',9' samplen 2 spacing 0.9

set title 'lambda_i'
set ylabel 'eigenvalue'
set yrange [evlo / 2:evhi * 2]
plot for [f = 1:nfiles] for [k = 0:ns(f) - 1] sfile(f) index k using 1:2 with lines \
     linecolor rgb rgbof(shade(f, k)) dashtype f linewidth 1.8 \
     title (nfiles > 1 ? sprintf('%s, step %s', field(labels, f), stepname(f, k)) : sprintf('step %s', stepname(f, k)))

set title 'lambda_i / lambda_1'
set ylabel 'relative eigenvalue'
set autoscale y
unset key
plot for [f = 1:nfiles] for [k = 0:ns(f) - 1] sfile(f) index k using 1:3 with lines \
     linecolor rgb rgbof(shade(f, k)) dashtype f linewidth 1.8 notitle

unset multiplot
set output
