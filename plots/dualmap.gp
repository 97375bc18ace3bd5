# normscope: the dual (correlation) maps of MimicNorm's Figure 4 from one or
# more `normscope meanfield` result files (`normscope plot A.h5 --what dualmap
# -o DIR`): the c-map T(rho) of the network without the weight mean (solid)
# and Tbar(rho) with it (dashed), against the identity; their stable fixed
# points c* are marked on the diagonal (circle: T, square: Tbar).  For relu
# at (2, 0) T = 2 phi_hat with c* = 1 and Tbar = (phi_hat - phi_hat(0)) /
# (phi_hat(1) - phi_hat(0)) with c* = 0.
#
# Variables from normscope: datadir, out, fmt, scriptdir; nfiles, labels
# ('|'-separated), slopes (per file the slopes at rho = 1 of T and Tbar,
# space-separated).
# Data files (whitespace-separated, '#' comments, NaN for missing values):
#   datadir/dual<i>.dat   rho T Tbar
#   datadir/fix<i>.dat    two rows: c* c* of T, then of Tbar
# To redraw by hand:
#   gnuplot -e "datadir='DIR/dualmap-data'; out='x.png'; fmt='png'; scriptdir='plots'; \
#               nfiles=1; labels='relu (2, 0)'; slopes='1 1.4669'" plots/dualmap.gp

width = 760; height = 700
load scriptdir . '/common.gp'

field(s, i) = (i <= 1) ? (strstrt(s, '|') ? s[1:strstrt(s, '|') - 1] : s) \
                       : (strstrt(s, '|') ? field(s[strstrt(s, '|') + 1:], i - 1) : '')
label(i) = field(labels, i)
dfile(i) = sprintf('%s/dual%d.dat', datadir, i)
ffile(i) = sprintf('%s/fix%d.dat', datadir, i)
slope(i, j) = word(slopes, 2 * (i - 1) + j) + 0
tlabel(i) = sprintf("%s: T, T'(1) = %.4g", label(i), slope(i, 1))
blabel(i) = sprintf("%s: Tbar (weight mean), Tbar'(1) = %.4g", label(i), slope(i, 2))

set title "Dual maps T (solid) and Tbar with the weight mean (dashed)"
set xlabel 'input correlation rho'
set ylabel 'output correlation'
set xrange [-1:1]
set yrange [-1:1]
set size ratio -1
set key bottom right
set xtics 0.5
set ytics 0.5
plot x with lines linecolor rgb '#a0a0a0' dashtype 3 linewidth 1 title 'identity', \
     for [i = 1:nfiles] dfile(i) using 1:2 with lines linetype i title tlabel(i), \
     for [i = 1:nfiles] dfile(i) using 1:3 with lines linetype i dashtype 2 title blabel(i), \
     for [i = 1:nfiles] ffile(i) every ::0::0 using 1:2 with points linetype i pointtype 7 pointsize 1.6 notitle, \
     for [i = 1:nfiles] ffile(i) every ::1::1 using 1:2 with points linetype i pointtype 5 pointsize 1.4 notitle
set output
