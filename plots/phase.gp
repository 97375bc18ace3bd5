# normscope: mean-field phase diagram of a `normscope meanfield` result file
# (`normscope plot OUT.h5 --what phase -o DIR`): the slope of the c-map at
# c = 1, which decides the regime, as a heat map over sigma_w^2 x sigma_b^2
# (white at 1: critical, blue ordered, red chaotic; it is chi_1 where
# 0 < q* < inf, and the limit map's slope where q* is 0 or infinite, cells
# dotted, where chi_1 does not decide) and the stable correlation c*, both
# with the critical line (slope 1, found by root finding along each grid
# row, not by contouring) and the chosen point.
#
# Variables from normscope: datadir, out, fmt, scriptdir; act (activation),
# wm (1: weight mean), nline (points of the critical line), nlimit (cells
# where q* is 0 or infinite), cbmax (top of the colour scale, 2 or the
# largest slope up to 4), sw2min, sw2max,
# sb2min, sb2max (the grid), inside (1: the chosen point lies in the grid),
# ptlabel ("(sw2, sb2)" of the chosen point).
# Data files (whitespace-separated, '#' comments, NaN for missing values):
#   datadir/phase.dat   sw2 sb2 chi1 cstar slope1 regime_by (1: q* 0 or inf)
#                       one block per sigma_b^2 row
#   datadir/line.dat    sw2 sb2              the critical line, blocks per crossing
#   datadir/point.dat   sw2 sb2              the chosen point
# To redraw by hand:
#   gnuplot -e "datadir='DIR/phase-data'; out='x.png'; fmt='png'; scriptdir='plots'; \
#               act='tanh'; wm=0; nline=250; nlimit=0; cbmax=2; sw2min=0.25; sw2max=4; \
#               sb2min=0; sb2max=0.5; inside=1; ptlabel='(2.5, 0.1)'" plots/phase.gp

width = 1500; height = 620
load scriptdir . '/common.gp'

pfile = datadir . '/phase.dat'
lfile = datadir . '/line.dat'
ptfile = datadir . '/point.dat'
wmtext = wm ? ' with weight mean' : ''

set multiplot layout 1,2 margins 0.06,0.95,0.12,0.88 spacing 0.11,0 \
    title sprintf('Mean-field phase diagram: %s%s', act, wmtext) font ',13'
set xrange [sw2min:sw2max]
set yrange [sb2min:sb2max]
set xlabel 'sigma_w^2'
set ylabel 'sigma_b^2'
unset grid
set tics out
set key top left opaque box

# The critical line in black, the chosen point as a triangle (an empty
# line file or a point outside the grid draws nothing and has no key entry).
set style line 11 linecolor rgb '#000000' linewidth 2.5
set style line 12 linecolor rgb '#000000' pointtype 9 pointsize 2.2 linewidth 1.5
set style line 13 linecolor rgb '#ffffff' pointtype 9 pointsize 2.2 linewidth 1.5
set style line 14 linecolor rgb '#404040' pointtype 7 pointsize 0.25
ltitle = nline > 0 ? 'critical line: c-map slope at c = 1 is 1' : ''
ptitle = inside ? 'chosen point ' . ptlabel : ''
dtitle = nlimit > 0 ? 'q* = 0 or inf: slope of the limit map, chi_1 does not decide' : ''

# ------------------------------------------------- slope of the c-map at 1
set title "slope of the c-map at c = 1: the regime (blue: ordered < 1 < chaotic: red)\n= chi_1 = sigma_w^2 E[phi'(u)^2] where 0 < q* < inf
set cbrange [0:cbmax]
unset cblabel
set palette defined (0 '#053061', 0.5 '#4393c3', 0.85 '#d1e5f0', 1 '#f7f7f7', \
                     1 + 0.15 * (cbmax - 1) '#fddbc7', 1 + 0.5 * (cbmax - 1) '#d6604d', \
                     cbmax '#67001f')
set colorbox vertical user origin graph 1.02, graph 0 size graph 0.03, graph 1
plot pfile using 1:2:($5 > cbmax ? cbmax : $5) with image notitle, \
     pfile using 1:($6 == 1 ? $2 : NaN) every 2:2 with points linestyle 14 title dtitle, \
     lfile using 1:2 with lines linestyle 11 title ltitle, \
     ptfile using 1:2 with points linestyle 12 title ptitle

# ------------------------------------------------------------------- c*
set title 'c*, the stable correlation fixed point (blank: undefined)'
set cbrange [0:1]
set palette defined (0 '#440154', 0.25 '#3b528b', 0.5 '#21918c', 0.75 '#5ec962', 1 '#fde725')
plot pfile using 1:2:4 with image notitle, \
     lfile using 1:2 with lines linestyle 11 title ltitle, \
     ptfile using 1:2 with points linestyle 12 title ptitle

unset multiplot
set output
