# normscope: each parameterised layer's share of the NTK trace over training
# (`normscope plot NTK.h5 ... --what ntk-layers -o DIR`), one panel per file,
# one colour per layer, log scale.
#
# Variables from normscope: datadir, out, fmt, scriptdir; nfiles, labels,
# nlayers (layers per file, space-separated), layernames (all files' layer
# names in order), maxstep, sharelo.
# Data: datadir/layers<f>.dat: step share_1 ... share_L.

width = (nfiles > 1 ? 700 * (nfiles < 3 ? nfiles : 3) : 900); height = 600 * ((nfiles + 2) / 3)
load scriptdir . '/common.gp'

field(s, i) = (i <= 1) ? (strstrt(s, '|') ? s[1:strstrt(s, '|') - 1] : s) \
                       : (strstrt(s, '|') ? field(s[strstrt(s, '|') + 1:], i - 1) : '')
nl(f) = int(word(nlayers, f))
off(f) = (f <= 1) ? 0 : off(f - 1) + nl(f - 1)
lname(f, j) = word(layernames, off(f) + j)
lfile(f) = sprintf('%s/layers%d.dat', datadir, f)
cols = (nfiles < 3 ? nfiles : 3)
rows = (nfiles + 2) / 3
set multiplot layout rows,cols margins 0.08,0.98,0.2,0.86 spacing 0.08,0.2 \
    title "Share of the NTK trace per layer"
set logscale y
set format y '%g'
set yrange [(sharelo > 1e-8 ? sharelo / 2 : 1e-8):1.5]
set xrange [0:maxstep * 1.02 + 1]
set xlabel 'optimiser step'
set ylabel 'layer trace / trace'
set key below font ',9' samplen 2 maxrows 3
do for [f = 1:nfiles] {
    set title field(labels, f) font ',10'
    plot for [j = 1:nl(f)] lfile(f) using 1:(column(j + 1)) with linespoints linetype j title lname(f, j)
}
unset multiplot
set output
