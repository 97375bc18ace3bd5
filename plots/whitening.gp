# normscope: how whitened the activations are through depth, from
# `normscope spectrum` result files (`normscope plot SPEC.h5 ... --what
# whitening -o DIR`), one colour per file (the last checkpoint of each),
# against the layer's position in the network: the covariance's condition
# number (log), its effective rank (exp of the spectral entropy) and
# participation ratio ((sum l)^2 / sum l^2), both as fractions of the
# features, the mean |correlation| of two features, the distance of the
# correlation matrix to the identity (||R - I||_F / sqrt(F(F-1))) and the
# mean cosine similarity of two samples' feature vectors.  Filled points
# are activation layers, open ones the others (dense, conv, norm).
#
# Variables from normscope: datadir, out, fmt, scriptdir; nfiles, labels,
# notes ('|'-separated), subtitle (one file: its label, step, samples and
# mode; several: what they share), ticks (layer names and indices, "name index
# ...", where every file has the same layers; else empty), maxindex, condlo,
# condhi (range of the finite condition numbers), condfloor (the largest
# condition number the analysis reports: a singular covariance).
# Data: datadir/white<f>.dat: index condition_number effective_rank/F
# participation_ratio/F mean_abs_corr corr_identity_distance mean_cosine
# activation(0/1) F (NaN where missing).
# To redraw by hand:
#   gnuplot -e "datadir='DIR/whitening-data'; out='x.png'; fmt='png'; \
#               scriptdir='plots'; nfiles=1; labels='bn cnn'; \
#               subtitle='bn cnn: step 16, 500 samples of fashion-mnist, eval mode'; \
#               notes=''; ticks='00-conv 0 02-relu 2'; maxindex=10; \
#               condlo=1e3; condhi=1e12; condfloor=1e12" plots/whitening.gp

width = 1600; height = 940
load scriptdir . '/common.gp'

field(s, i) = (i <= 1) ? (strstrt(s, '|') ? s[1:strstrt(s, '|') - 1] : s) \
                       : (strstrt(s, '|') ? field(s[strstrt(s, '|') + 1:], i - 1) : '')
wfile(f) = sprintf('%s/white%d.dat', datadir, f)

# One legend above the panels: the files, then the two kinds of point; as
# many columns as the longest label allows (about 9 px a character at the
# key's font, plus the sample).
nkey = nfiles + 2
maxlen = 26
do for [f = 1:nfiles] { maxlen = (strlen(field(labels, f)) + 4 > maxlen ? strlen(field(labels, f)) + 4 : maxlen) }
keycols = int((width - 150) / (8.0 * maxlen + 70))
keycols = (keycols < 1 ? 1 : (keycols > nkey ? nkey : keycols))
keyrows = int(ceil(1.0 * nkey / keycols))
keyh = 18 * keyrows + 12
# A subtitle takes a second line of the title.
th = (strlen(subtitle) ? 20.0 : 0)
top = 1 - (95.0 + th + keyh) / height
# Tick labels of layer names need room below each row.
tickh = (strlen(ticks) > 0 ? 60.0 : 20.0) / height
pw = (0.985 - 0.06 - 2 * 0.06) / 3
ph = (top - 0.06 - tickh - 0.1) / 2
panel(r, c) = sprintf('set lmargin at screen %g; set rmargin at screen %g; set tmargin at screen %g; set bmargin at screen %g', \
                      0.06 + c * (pw + 0.06), 0.06 + c * (pw + 0.06) + pw, top - r * (ph + 0.1 + tickh), top - r * (ph + 0.1 + tickh) - ph)

set multiplot title 'Whitening of the activations through depth' . \
                   (strlen(subtitle) ? "\n" . subtitle : '')
set xrange [-0.5:maxindex + 0.5]
set datafile missing NaN
unset key
# Layer names under the ticks where the files share their layers (at most
# about 16 named), else the indices.
ntick = int(words(ticks) / 2)
tickevery = (ntick <= 16 ? 1 : int(ceil(ntick / 16.0)))
if (ntick > 0) {
    set xtics () rotate by 45 right font ',9'
    do for [i = 1:ntick] {
        if ((i - 1) % tickevery == 0 || i == ntick) {
            set xtics add (word(ticks, 2 * i - 1) int(word(ticks, 2 * i)))
        } else {
            set xtics add ('' int(word(ticks, 2 * i)) 1)
        }
    }
    unset xlabel
    set grid noxtics nomxtics ytics mytics
} else {
    set xtics 1 font ',10'
    set xlabel 'layer index'
    set grid xtics noxtics ytics mytics
}
set offsets 0, 0, graph 0.05, graph 0.05

# Three layers of every file: the line, filled points on activation
# layers, open points on the others.
lines(f, col) = sprintf("'%s' using 1:%d with lines linetype %d notitle, " . \
                        "'' using 1:($8 > 0 ? $%d : NaN) with points linetype %d pointtype 7 pointsize 0.9 notitle, " . \
                        "'' using 1:($8 > 0 ? NaN : $%d) with points linetype %d pointtype 4 pointsize 0.9 notitle", \
                        wfile(f), col, f, col, f, col, f)
# The plot command of column col for every file (gnuplot's plot for [...]
# cannot hold three plots per file).
plotcol(col) = 'plot ' . join(col, nfiles)
join(col, n) = (n <= 1) ? lines(1, col) : join(col, n - 1) . ', ' . lines(n, col)

# ------------------------------------------------------ condition number
set title 'Condition number of the covariance'
set ylabel 'lambda_max / lambda_min'
set logscale y
ylo = 10 ** floor(log10(condlo))
yhi = 10 ** ceil(log10(condhi * 1.01))
set yrange [ylo:(yhi > ylo ? yhi : 10 * ylo)]
set offsets 0, 0, 0, 0
if (condhi > 1e5) { set format y '%.0e' } else { set format y '%g' }
if (condhi >= condfloor * 0.999) {
    set arrow 1 from graph 0, first condfloor to graph 1, first condfloor nohead dashtype 2 linecolor rgb '#909090' back
    set label 1 'singular (the floor of the analysis)' at graph 0.98, first condfloor * 2.5 right textcolor rgb '#707070' font ',9'
}
eval panel(0, 0)
eval plotcol(2)
unset arrow 1
unset label 1
unset logscale y
set format y '%g'
set offsets 0, 0, graph 0.05, graph 0.05

# ------------------------------------------- effective rank, participation
set title 'Effective rank / features'
set ylabel 'exp(entropy of lambda / sum lambda) / F'
# Fractions and correlations: from 0 to a little above the largest value,
# not to the next tic beyond it.
set yrange [0:*]
set autoscale yfixmax
eval panel(0, 1)
eval plotcol(3)

set title 'Participation ratio / features'
set ylabel '(sum lambda)^2 / sum lambda^2 / F'
eval panel(0, 2)
eval plotcol(4)

# ------------------------------------------------------ correlations
set title 'Mean |correlation| of two features'
set ylabel 'mean |R_ij|, i != j'
eval panel(1, 0)
eval plotcol(5)

set title 'Distance of the correlation matrix to I'
set ylabel '||R - I||_F / sqrt(F (F - 1))'
eval panel(1, 1)
eval plotcol(6)

set title 'Mean cosine similarity of two samples'
set ylabel 'mean cos(x_a, x_b), a != b'
set autoscale yfix
eval panel(1, 2)
eval plotcol(7)

# ------------------------------------------- one legend above the panels
set lmargin at screen 0.06
set rmargin at screen 0.985
set tmargin at screen 1 - (40.0 + th) / height
set bmargin at screen 1 - (40.0 + th + keyh) / height
unset title
unset xlabel
unset ylabel
unset tics
unset grid
unset border
unset logscale
unset arrow
set key inside center center horizontal maxrows keyrows font ',10' samplen 2.5 width 1 noopaque nobox
plot [0:1][0:1] for [f = 1:nfiles] NaN with linespoints linetype f pointtype 7 title field(labels, f) . \
         (strlen(field(notes, f)) ? ' (' . field(notes, f) . ')' : ''), \
     NaN with points pointtype 7 pointsize 0.9 linecolor rgb '#404040' title 'activation layers', \
     NaN with points pointtype 4 pointsize 0.9 linecolor rgb '#404040' title 'dense, conv, norm layers'

unset multiplot
set output
