# normscope: mean-field trajectories through depth of one or more
# `normscope meanfield` result files overlaid (`normscope plot A.h5 B.h5
# --what trajectory -o DIR`): the pre-activation variance q^l with its fixed
# point q* (dashed), the correlation c^l of two inputs with c* (dashed), and
# the condition number of the infinite-width NTK Gram matrix of equally
# correlated inputs, one colour per file.
#
# Variables from normscope: datadir, out, fmt, scriptdir; nfiles, labels
# (file labels separated by '|'), qstars, cstars (q* and c* per file,
# space-separated, NaN where not finite), maxdepth, qlog (1: q spans more
# than a factor 20, log axis), qmin, qmax, kmin, kmax (condition-number range).
# Data files (whitespace-separated, '#' comments, NaN for missing values):
#   datadir/traj<i>.dat   depth q c chi ntk_corr ntk_cond
# To redraw by hand:
#   gnuplot -e "datadir='DIR/trajectory-data'; out='x.png'; fmt='png'; scriptdir='plots'; \
#               nfiles=1; labels='relu (2, 0)'; qstars='1'; cstars='1'; maxdepth=50; \
#               qlog=0; qmin=1; qmax=1; kmin=5; kmax=11" plots/trajectory.gp

width = 1500; height = 520
load scriptdir . '/common.gp'

field(s, i) = (i <= 1) ? (strstrt(s, '|') ? s[1:strstrt(s, '|') - 1] : s) \
                       : (strstrt(s, '|') ? field(s[strstrt(s, '|') + 1:], i - 1) : '')
label(i) = field(labels, i)
tfile(i) = sprintf('%s/traj%d.dat', datadir, i)
qstar(i) = word(qstars, i) + 0
cstar(i) = word(cstars, i) + 0

set multiplot layout 1,3 margins 0.065,0.985,0.22,0.90 spacing 0.065,0
set xrange [0:maxdepth]
set xlabel 'layer l'
unset key

# --------------------------------------------------------------------- q
set title 'Pre-activation variance q^l (dashed: q*)'
set ylabel 'q^l'
if (qlog) {
    set logscale y
    set format y '%g'
    set yrange [qmin / 2:qmax * 2]
} else {
    set format y '%g'
    lo = qmin - 0.08 * (qmax - qmin + 1e-3 * qmax + 1e-12)
    set yrange [(lo > 0 ? lo : 0):qmax + 0.08 * (qmax - qmin + 1e-3 * qmax + 1e-12)]
}
plot for [i = 1:nfiles] tfile(i) using 1:2 with lines linetype i notitle, \
     for [i = 1:nfiles] qstar(i) with lines linetype i dashtype 2 linewidth 1.2 notitle
unset logscale y
set format y '%g'

# --------------------------------------------------------------------- c
set title 'Correlation c^l of two inputs (dashed: c*)'
set ylabel 'c^l'
set yrange [*:1.02]
set autoscale ymin
plot for [i = 1:nfiles] tfile(i) using 1:3 with lines linetype i notitle, \
     for [i = 1:nfiles] cstar(i) with lines linetype i dashtype 2 linewidth 1.2 notitle
set autoscale y

# ------------------------------------------------------------ NTK cond
set title 'Condition number of the NTK Gram (infinite width)'
set ylabel 'lambda_max / lambda_min'
set logscale y
set yrange [(kmin > 1 ? kmin / 1.5 : 0.9):kmax * 1.5]
set format y '%g'
plot for [i = 1:nfiles] tfile(i) using 1:6 with lines linetype i notitle

# One legend for the three panels, in a blank plot across the figure (a
# key cannot be wider than its own panel).
unset logscale y
unset title
unset xlabel
unset ylabel
unset tics
unset border
unset grid
set lmargin at screen 0.065
set rmargin at screen 0.985
set tmargin at screen 0.12
set bmargin at screen 0.01
set key at screen 0.5, screen 0.065 center center horizontal maxrows 2 samplen 3
set xrange [0:1]
set yrange [0:1]
plot for [i = 1:nfiles] NaN with lines linetype i title label(i)

unset multiplot
set output
