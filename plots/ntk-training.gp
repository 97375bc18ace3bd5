# normscope: the NTK over training from `normscope ntk` result files
# (`normscope plot NTK.h5 ... --what ntk-training -o DIR`), one colour per
# file, over the optimiser step: the condition number lambda_max /
# lambda_min (log), the drift 1 - <T1,T2>_F / (|T1|_F |T2|_F) to the first
# checkpoint (solid) and to the previous one (dashed), the effective rank
# (trace^2 / |Theta|_F^2) and the kernel-target alignment.
#
# Variables from normscope: datadir, out, fmt, scriptdir; nfiles, labels,
# descs ('|'-separated), maxstep, ndrift (drift points of all files), ncond
# (finite condition numbers of all files), condok (per file, 1 when it has
# one, space-separated), condlo, condhi (their range), multi (files with
# more than one checkpoint), nodrift (labels of those among them without
# /ntk/drift, comma-separated).
# Data: datadir/train<f>.dat: step cond drift_first drift_prev eff_rank
# alignment trace (NaN where missing).
# To redraw by hand:
#   gnuplot -e "datadir='DIR/ntk-training-data'; out='x.png'; fmt='png'; \
#               scriptdir='plots'; nfiles=1; labels='run.h5'; descs='run.h5'; \
#               maxstep=72; ndrift=3; ncond=4; condok='1'; condlo=178; \
#               condhi=508; multi=1; nodrift=''" plots/ntk-training.gp

width = 1500; height = 900
load scriptdir . '/common.gp'

field(s, i) = (i <= 1) ? (strstrt(s, '|') ? s[1:strstrt(s, '|') - 1] : s) \
                       : (strstrt(s, '|') ? field(s[strstrt(s, '|') + 1:], i - 1) : '')
tfile(f) = sprintf('%s/train%d.dat', datadir, f)

# Room at the top for the title and one legend for all panels: as many
# columns as the longest label allows (gnuplot reckons about 9 px a
# character at the key's font, plus the line sample).
maxlen = 0
do for [f = 1:nfiles] { maxlen = (strlen(field(labels, f)) + 16 > maxlen ? strlen(field(labels, f)) + 16 : maxlen) }
keycols = int((width - 150) / (9.0 * maxlen + 90))
keycols = (keycols < 1 ? 1 : (keycols > nfiles ? nfiles : keycols))
keyrows = int(ceil(1.0 * nfiles / keycols))
keyh = (nfiles > 1 ? 18 * keyrows + 10 : 0)
top = 1 - (75.0 + keyh) / height
# Panels placed by hand (row r, column c from the top left), so the legend
# can have the full width above them.
pw = (0.985 - 0.07 - 0.08) / 2
ph = (top - 0.07 - 0.13) / 2
panel(r, c) = sprintf('set lmargin at screen %g; set rmargin at screen %g; set tmargin at screen %g; set bmargin at screen %g', \
                      0.07 + c * (pw + 0.08), 0.07 + c * (pw + 0.08) + pw, top - r * (ph + 0.13), top - r * (ph + 0.13) - ph)
set multiplot title (nfiles > 1 ? 'NTK over training' : 'NTK over training: ' . descs)
set xlabel 'optimiser step'
set xrange [0:maxstep * 1.02 + 1]
# A checkpoint without a value (NaN) is skipped; the line goes on.
set datafile missing NaN
set offsets 0, 0, graph 0.05, graph 0.05
unset key

# ------------------------------------------------------ condition number
set title 'Condition number lambda_max / lambda_min'
set ylabel 'condition number'
set logscale y
# Whole decades around the values; %g reads well up to 1e5.
if (ncond > 0) {
    ylo = 10 ** floor(log10(condlo))
    yhi = 10 ** ceil(log10(condhi))
    set yrange [ylo:(yhi > ylo ? yhi : 10 * ylo)]
    set offsets 0, 0, 0, 0
}
if (condhi > 1e5) { set format y '%.0e' } else { set format y '%g' }
eval panel(0, 0)
set style textbox opaque noborder margins 2, 1
if (ncond == 0) {
    set label 1 (nfiles > 1 ? 'only the top eigenvalues are known: no lambda_min' : \
                 'only the top eigenvalues are known (ARPACK): no lambda_min') \
        at graph 0.5, 0.5 center front textcolor rgb '#808080'
}
if (ncond == 0) {
    set yrange [1:10]
    plot NaN notitle
} else {
    plot for [f = 1:nfiles] tfile(f) using 1:2 with linespoints linetype f notitle
}
unset label 1
unset logscale y
set format y '%g'
set autoscale y
set offsets 0, 0, graph 0.05, graph 0.05

# ---------------------------------------------------------------- drift
set title 'Kernel drift (solid: to the first checkpoint, dashed: to the previous)'
set ylabel '1 - cos(Theta_s, Theta_ref)'
eval panel(0, 1)
set yrange [0:*]
set offsets 0, 0, graph 0.05, 0
if (strlen(nodrift)) {
    set label 1 sprintf('no drift stored (/ntk/drift): %s', nodrift) \
        at graph 0.5, (ndrift > 0 ? 0.93 : 0.5) center front boxed textcolor rgb '#808080' font ',10'
}
if (multi == 0) {
    set label 1 (nfiles > 1 ? 'one checkpoint per file: no drift' : 'one checkpoint: no drift') \
        at graph 0.5, 0.5 center textcolor rgb '#808080'
}
if (ndrift == 0) {
    set yrange [0:1]
    plot NaN notitle
} else {
    plot for [f = 1:nfiles] tfile(f) using 1:3 with linespoints linetype f notitle, \
         for [f = 1:nfiles] tfile(f) using 1:4 with linespoints linetype f dashtype 2 pointtype 6 notitle
}
unset label 1

# ------------------------------------------------------- effective rank
set title 'Effective rank (trace)^2 / ||Theta||_F^2'
set ylabel 'effective rank'
eval panel(1, 0)
plot for [f = 1:nfiles] tfile(f) using 1:5 with linespoints linetype f notitle
set autoscale y
set offsets 0, 0, graph 0.05, graph 0.05

# ------------------------------------------------------------- alignment
set title 'Kernel-target alignment with the one-hot labels'
set ylabel 'alignment'
eval panel(1, 1)
set yrange [0:*]
set offsets 0, 0, 0, graph 0.05
plot for [f = 1:nfiles] tfile(f) using 1:6 with linespoints linetype f notitle

# ------------------------------------------- one legend above the panels
if (nfiles > 1) {
    set lmargin at screen 0.07
    set rmargin at screen 0.985
    set tmargin at screen 1 - 40.0 / height
    set bmargin at screen 1 - (40.0 + keyh) / height
    unset title
    unset xlabel
    unset ylabel
    unset tics
    unset grid
    unset border
    unset logscale
    set key inside center center horizontal maxrows keyrows font ',10' samplen 2.5 width 1 noopaque nobox
    plot [0:1][0:1] for [f = 1:nfiles] NaN with linespoints linetype f \
         title field(labels, f) . (word(condok, f) eq '0' ? ' (no lambda_min)' : '')
}

unset multiplot
set output
