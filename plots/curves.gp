# normscope: training curves of one or more run files overlaid
# (`normscope plot RUN.h5 ... --what curves -o DIR`): test and train accuracy
# per epoch, training loss per step (log scale, smoothed over the raw curve)
# and the learning rate per step, one colour per run.
#
# Variables from normscope: datadir, out, fmt, scriptdir; nruns, labels
# (run labels separated by '|'), maxepoch, maxstep; nacc, nloss, nlr (points
# the accuracy, loss and learning-rate panels can draw; 0: the panel says
# there is nothing); lossmin, lossmax (loss axis range, the top at most ten
# times the highest initial loss); lrmin, lrmax (lowest and highest peak
# learning rate of a run); lrlog (1: those differ more than tenfold, so a
# log axis shows them all).
# Data files (whitespace-separated, '#' comments, NaN for missing values):
#   datadir/run<i>-epoch.dat  epoch step train_loss train_acc test_loss test_acc lr
#   datadir/run<i>-step.dat   step epoch loss loss_smooth lr
# To redraw by hand:
#   gnuplot -e "datadir='DIR/curves-data'; out='x.png'; fmt='png'; \
#               scriptdir='plots'; nruns=1; labels='bn mlp'; maxepoch=3; \
#               maxstep=1407; nacc=3; nloss=1407; nlr=1407; lossmin=0.3; \
#               lossmax=2.4; lrlog=0; lrmin=0.05; lrmax=0.05" plots/curves.gp

width = 1500; height = 450
load scriptdir . '/common.gp'

# The i-th '|'-separated field of s.
field(s, i) = (i <= 1) ? (strstrt(s, '|') ? s[1:strstrt(s, '|') - 1] : s) \
                       : (strstrt(s, '|') ? field(s[strstrt(s, '|') + 1:], i - 1) : '')
label(i) = field(labels, i)
efile(i) = sprintf('%s/run%d-epoch.dat', datadir, i)
sfile(i) = sprintf('%s/run%d-step.dat', datadir, i)
xmax(m) = (m > 0 ? m : 1)

set multiplot layout 1,3 margins 0.05,0.985,0.13,0.90 spacing 0.065,0

# ---------------------------------------------------------------- accuracy
set title 'Accuracy per epoch (solid: test, dashed: train)'
set xlabel 'epoch'
set ylabel 'accuracy (%)'
# A little room right of the last epoch keeps its points off the border.
set xrange [0:xmax(maxepoch) * 1.03 + 0.15]
set format y '%g'
set autoscale yfix
set offsets 0, 0, graph 0.05, graph 0.05
unset key
if (nacc == 0) {
    set label 1 'no completed epoch' at graph 0.5, 0.5 center textcolor rgb '#808080'
    plot [0:1][0:100] NaN notitle
    unset label 1
} else {
    if (maxepoch <= 10) { set xtics 1 } else { set xtics autofreq }
    plot for [i = 1:nruns] efile(i) using 1:($4 * 100) with linespoints linetype i dashtype 2 linewidth 1.2 pointtype 6 pointsize 0.6 notitle, \
         for [i = 1:nruns] efile(i) using 1:($6 * 100) with linespoints linetype i notitle
}
set xtics autofreq
set autoscale y
set offsets 0, 0, 0, 0

# ------------------------------------------------------------------- loss
set title 'Training loss per step (smoothed; faint: raw)'
set xlabel 'step'
set ylabel 'cross-entropy loss'
set xrange [0:xmax(maxstep)]
set logscale y
set format y '%g'
set key top right
# Whole decades around the losses drawn.
if (nloss > 0) {
    ylo = 10 ** floor(log10(lossmin))
    yhi = 10 ** ceil(log10(lossmax))
    set yrange [ylo:(yhi > ylo ? yhi : 10 * ylo)]
}
if (nloss == 0) {
    set label 1 'no finite training loss' at graph 0.5, 0.5 center textcolor rgb '#808080'
    plot [0:1][0.1:10] NaN notitle, for [i = 1:nruns] NaN with lines linetype i title label(i)
    unset label 1
} else {
    plot for [i = 1:nruns] sfile(i) using 1:3 with lines linecolor rgb faded(i) linewidth 0.8 notitle, \
         for [i = 1:nruns] sfile(i) using 1:4 with lines linetype i title label(i)
}
unset logscale y
unset key

# ---------------------------------------------------------- learning rate
set title 'Learning rate per step'
set xlabel 'step'
set ylabel 'learning rate'
if (lrlog) {
    # Two decades under the lowest peak rate; annealed tails leave the axis.
    set logscale y
    set yrange [lrmin * 1e-2:lrmax * 2]
} else {
    set yrange [0:(lrmax > 0 ? lrmax * 1.1 : 1)]
}
if (nlr == 0) {
    set label 1 'no learning rate recorded' at graph 0.5, 0.5 center textcolor rgb '#808080'
    plot [0:1][0:1] NaN notitle
    unset label 1
} else {
    # Runs often share a schedule: earlier runs are drawn wider, so lines
    # on top of each other still show every colour.
    plot for [i = 1:nruns] sfile(i) using 1:5 with lines linetype i \
         linewidth (nruns > 1 ? 1.5 + 3.0 * (nruns - i) / (nruns - 1) : 2) notitle
}

unset multiplot
set output
