# normscope: the NTK over training from `normscope ntk` result files
# (`normscope plot NTK.h5 ... --what ntk-training -o DIR`), one colour per
# file: condition number (log), drift 1 - <T1,T2>_F/(|T1||T2|) to the first
# checkpoint (solid) and to the previous one (dashed), effective rank
# (trace^2 / |Theta|_F^2) and kernel-target alignment.
#
# Variables from normscope: datadir, out, fmt, scriptdir; nfiles, labels,
# maxstep, ndrift (drift points), ncond (finite condition numbers).
# Data: datadir/train<f>.dat: step cond drift_init drift_prev eff_rank alignment trace.

width = 1500; height = 900
load scriptdir . '/common.gp'

field(s, i) = (i <= 1) ? (strstrt(s, '|') ? s[1:strstrt(s, '|') - 1] : s) \
                       : (strstrt(s, '|') ? field(s[strstrt(s, '|') + 1:], i - 1) : '')
tfile(f) = sprintf('%s/train%d.dat', datadir, f)
set multiplot layout 2,2 margins 0.07,0.985,0.08,0.93 spacing 0.08,0.12
set xlabel 'optimiser step'
set xrange [0:maxstep * 1.02 + 1]
set key top right font ',9'

set title 'Condition number lambda_max / lambda_min'
set logscale y
set format y '%g'
if (ncond == 0) {
    set label 1 'only the top eigenvalues are known' at graph 0.5, 0.5 center textcolor rgb '#808080'
    plot [0:1][1:10] NaN notitle
    unset label 1
} else {
    plot for [f = 1:nfiles] tfile(f) using 1:2 with linespoints linetype f title field(labels, f)
}
unset logscale y
unset key

set title 'Kernel drift (solid: to the first checkpoint, dashed: to the previous)'
set yrange [0:*]
if (ndrift == 0) {
    set label 1 'one checkpoint: no drift' at graph 0.5, 0.5 center textcolor rgb '#808080'
    plot [0:1][0:1] NaN notitle
    unset label 1
} else {
    plot for [f = 1:nfiles] tfile(f) using 1:3 with linespoints linetype f notitle, \
         for [f = 1:nfiles] tfile(f) using 1:4 with linespoints linetype f dashtype 2 pointtype 6 notitle
}
set autoscale y

set title 'Effective rank (trace)^2 / ||Theta||_F^2'
plot for [f = 1:nfiles] tfile(f) using 1:5 with linespoints linetype f notitle

set title 'Kernel-target alignment with the one-hot labels'
plot for [f = 1:nfiles] tfile(f) using 1:6 with linespoints linetype f notitle

unset multiplot
set output
