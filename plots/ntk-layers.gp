# normscope: each parameterised layer's share of the NTK trace over
# training (`normscope plot NTK.h5 ... --what ntk-layers -o DIR`): the trace
# of the layer's own kernel J_l J_l^T divided by the sum over layers, one
# colour per layer (dashed after the tenth), one panel per file; a file of
# a single checkpoint gets bars by layer.  Log scale when the shares span
# more than a factor 20.
#
# Variables from normscope: datadir, out, fmt, scriptdir; nfiles, labels,
# descs and notes ('|'-separated), nlayers, nsteps and firststeps (per
# file, space-separated), layernames (all files' layer names in order), maxstep,
# sharelo, sharehi (smallest and largest positive share).
# Data: datadir/layers<f>.dat: step share_1 ... share_L (NaN where
# missing); datadir/bars<f>.dat (one checkpoint): layer share.
# To redraw by hand:
#   gnuplot -e "datadir='DIR/ntk-layers-data'; out='x.png'; fmt='png'; \
#               scriptdir='plots'; nfiles=1; labels='run.h5'; descs='run.h5'; \
#               notes=''; nlayers='5'; nsteps='4'; firststeps='0'; \
#               layernames='00-dense 01-bn 03-dense 04-bn 06-dense'; \
#               maxstep=72; sharelo=7e-4; sharehi=0.47" plots/ntk-layers.gp

cols = (nfiles < 3 ? nfiles : 3)
rows = (nfiles + 2) / 3
width = (nfiles > 1 ? 720 * cols : 960); height = 80 + 560 * rows
load scriptdir . '/common.gp'

field(s, i) = (i <= 1) ? (strstrt(s, '|') ? s[1:strstrt(s, '|') - 1] : s) \
                       : (strstrt(s, '|') ? field(s[strstrt(s, '|') + 1:], i - 1) : '')
nl(f) = int(word(nlayers, f))
ns(f) = int(word(nsteps, f))
off(f) = (f <= 1) ? 0 : off(f - 1) + nl(f - 1)
lname(f, j) = word(layernames, off(f) + j)
lfile(f) = sprintf('%s/layers%d.dat', datadir, f)
bfile(f) = sprintf('%s/bars%d.dat', datadir, f)
note(f) = field(notes, f)
maxnl = 0
do for [f = 1:nfiles] { maxnl = (nl(f) > maxnl ? nl(f) : maxnl) }
# Legend below each panel: about five names a row.
keyrows = (maxnl > 5 ? int(ceil(maxnl / 5.0)) : 1)
logy = (sharehi / sharelo > 20)

set multiplot layout rows,cols margins 0.08,0.98,(95.0 + 17 * keyrows) / height,1 - 80.0 / height \
    spacing 0.08,(135.0 + 17 * keyrows) / height \
    title (nfiles > 1 ? 'Share of the NTK trace per layer' : 'Share of the NTK trace per layer: ' . descs)
if (logy) {
    set logscale y
    set yrange [10 ** floor(log10(sharelo)):1.5]
} else {
    set yrange [0:1.05 * sharehi]
}
set format y '%g'
# Checkpoints without layer_trace (NaN) are skipped; the lines go on.
set datafile missing NaN
set ylabel 'layer trace / trace'
set key below font ',9' samplen 2 maxrows keyrows
set title font ',10'
do for [f = 1:nfiles] {
    t = (nfiles > 1 ? field(labels, f) : '') . (strlen(note(f)) ? sprintf(' (%s)', note(f)) : '')
    set title t
    if (nl(f) == 0) {
        set xrange [0:maxstep * 1.02 + 1]
        set xlabel 'optimiser step'
        set label 1 'no layer_trace in this file' at graph 0.5, 0.5 center textcolor rgb '#808080'
        unset key
        plot NaN notitle
        set key below font ',9' samplen 2 maxrows keyrows
        unset label 1
    }
    if (nl(f) > 0 && ns(f) == 1) {
        # One checkpoint: a bar per layer.
        set xrange [0.3:nl(f) + 0.7]
        set xlabel sprintf('layer (step %s)', word(firststeps, f))
        set xtics rotate by -35 left font ',9'
        set style fill solid 0.85 border -1
        set boxwidth 0.7
        unset key
        plot for [j = 1:nl(f)] bfile(f) every ::(j - 1)::(j - 1) using 1:2:xtic(lname(f, j)) \
             with boxes linecolor rgb colour(j) notitle
        set xtics norotate center autofreq font ''
        set key below font ',9' samplen 2 maxrows keyrows
    }
    if (nl(f) > 0 && ns(f) != 1) {
        set xrange [0:maxstep * 1.02 + 1]
        set xlabel 'optimiser step'
        plot for [j = 1:nl(f)] lfile(f) using 1:(column(j + 1)) with linespoints linetype j \
             dashtype 1 + (j > 10) title lname(f, j)
    }
}
unset multiplot
set output
