# normscope: condition number of the NTK against depth: the infinite-width
# theory (`normscope ntk --analytic`) for the inputs of the first file,
# plain (solid) and with MimicNorm's weight mean (dashed), and the measured
# one-output kernels of every file at its first checkpoint (points: filled
# plain, open with the weight mean), with each file's own analytic value
# (crosses).  (`normscope plot NTK.h5 ... --what ntk-depth -o DIR`)
#
# Variables from normscope: datadir, out, fmt, scriptdir; nfiles, labels,
# npoints, maxdepth.
# Data: datadir/curve.dat: depth cond cond_wm; datadir/points.dat: depth
# measured_cond analytic_cond weight_mean.

width = 900; height = 600
load scriptdir . '/common.gp'

set title 'NTK condition number against depth (lines: infinite width; points: measured)'
set xlabel 'dense layers'
set ylabel 'lambda_max / lambda_min'
set logscale y
set format y '%g'
set xrange [0:maxdepth + 1]
set key top right font ',10'
cf = datadir . '/curve.dat'
pf = datadir . '/points.dat'
if (npoints > 0) {
    plot cf using 1:2 with lines linetype 1 title 'theory, plain', \
         cf using 1:3 with lines linetype 2 dashtype 2 title 'theory, weight mean', \
         pf using 1:($4 == 0 ? $2 : NaN) with points linetype 1 pointtype 7 pointsize 1.4 title 'measured, plain', \
         pf using 1:($4 != 0 ? $2 : NaN) with points linetype 2 pointtype 6 pointsize 1.4 title 'measured, weight mean', \
         pf using 1:3 with points linetype 4 pointtype 2 pointsize 1.4 title 'theory for that network'
} else {
    plot cf using 1:2 with lines linetype 1 title 'theory, plain', \
         cf using 1:3 with lines linetype 2 dashtype 2 title 'theory, weight mean'
}
set output
