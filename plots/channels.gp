# normscope: per-channel distributions of the activations from `normscope
# spectrum` result files (`normscope plot SPEC.h5 ... --what channels -o
# DIR`), in the style of MimicNorm's Figures 2 and 3: for the first 30
# channels of up to four layers (activation layers where the result has
# them, evenly spaced through depth: the first, ..., the last), a box from
# the 25th to the 75th percentile with the median across it, whiskers from
# the 5th to the 95th and small circles at the 1st and 99th.  One row per
# file (the last checkpoint of each), one panel per layer.
#
# Variables from normscope: datadir, out, fmt, scriptdir; nfiles, labels,
# notes ('|'-separated), subtitle (one file: its label, step, samples
# and mode; several: what they share), nsel (layers drawn per file,
# space-separated), titles ('|'-separated panel titles of all files in
# order), maxsel (most layers of a file).
# Data: datadir/chan<f>.dat, one block per layer (gnuplot index k), rows:
# channel q1 q5 q25 q50 q75 q95 q99 (NaN where missing).
# To redraw by hand:
#   gnuplot -e "datadir='DIR/channels-data'; out='x.png'; fmt='png'; \
#               scriptdir='plots'; nfiles=1; labels='bn cnn'; \
#               subtitle='bn cnn: step 16, 500 samples of fashion-mnist, eval mode'; \
#               notes=''; nsel='4'; titles='02-relu|05-relu|08-relu|10-dense'; \
#               maxsel=4" plots/channels.gp

pw0 = 400; ph0 = 300
width = 110 + pw0 * maxsel
width = (width < 900 ? 900 : width)
# Rows of several files get a heading line with the file's label.
rowh = (nfiles > 1 ? 28 : 0)
height = 100 + (ph0 + 90 + rowh) * nfiles
load scriptdir . '/common.gp'

field(s, i) = (i <= 1) ? (strstrt(s, '|') ? s[1:strstrt(s, '|') - 1] : s) \
                       : (strstrt(s, '|') ? field(s[strstrt(s, '|') + 1:], i - 1) : '')
ns(f) = int(word(nsel, f))
off(f) = (f <= 1) ? 0 : off(f - 1) + ns(f - 1)
ptitle(f, k) = field(titles, off(f) + k + 1)
cfile(f) = sprintf('%s/chan%d.dat', datadir, f)
note(f) = field(notes, f)

top = 1 - ((strlen(subtitle) ? 85.0 : 70.0) + rowh) / height
bottom = 50.0 / height
left = 90.0 / width
gap = 55.0 / width
pw = (0.985 - left - (maxsel - 1) * gap) / maxsel
vgap = (nfiles > 1 ? (95.0 + rowh) / height : 0)
ph = (top - bottom - (nfiles - 1) * vgap) / nfiles
panel(r, c) = sprintf('set lmargin at screen %g; set rmargin at screen %g; set tmargin at screen %g; set bmargin at screen %g', \
                      left + c * (pw + gap), left + c * (pw + gap) + pw, top - r * (ph + vgap), top - r * (ph + vgap) - ph)

set multiplot title 'Per-channel activations: box 25-75%, median, whiskers 5-95%, circles 1% and 99%' \
    . (strlen(subtitle) ? "\n" . subtitle : '')
set style fill solid 0.3 border
set boxwidth 0.6 absolute
set xlabel 'channel' offset 0, 0.5
set xtics 5 font ',9'
set mxtics 5
set ytics font ',9'
set grid noxtics nomxtics ytics
# Around the values, not out to the next tic.
set autoscale yfix
set offsets 0, 0, graph 0.04, graph 0.04
set datafile missing NaN
unset key
set title font ',10'

do for [f = 1:nfiles] {
    # The file's label above its row, in its colour (drawn with the row's
    # first panel only).
    if (nfiles > 1) {
        set label 2 field(labels, f) . (strlen(note(f)) ? ' (' . note(f) . ')' : '') \
            at screen left - 60.0 / width, screen top - (f - 1) * (ph + vgap) + (rowh + 22.0) / height \
            left font ',11' textcolor rgb colour(f)
    }
    do for [k = 0:ns(f) - 1] {
        eval panel(f - 1, k)
        set title ptitle(f, k)
        if (k == 0) {
            set ylabel 'activation' . (nfiles == 1 && strlen(note(1)) ? "\n(" . note(1) . ')' : '') font ',10'
        } else {
            unset ylabel
        }
        set xrange [0:31]
        plot cfile(f) index k using 1:4:3:7:6 with candlesticks whiskerbars 0.5 linetype f, \
             '' index k using 1:5:5:5:5 with candlesticks linetype f linewidth 2.5, \
             '' index k using 1:2 with points linetype f pointtype 6 pointsize 0.35, \
             '' index k using 1:8 with points linetype f pointtype 6 pointsize 0.35
        unset label 2
    }
    if (ns(f) == 0) {
        eval panel(f - 1, 0)
        set title ''
        set label 1 'no channel quantiles in this file' at graph 0.5, 0.5 center textcolor rgb '#808080'
        plot [0:1][0:1] NaN notitle
        unset label 1
        unset label 2
    }
}

unset multiplot
set output
