# normscope: activation covariance spectra of `normscope spectrum` result
# files (`normscope plot SPEC.h5 ... --what act-spectrum -o DIR`): each
# layer's covariance eigenvalues divided by the largest (lambda_i /
# lambda_1) against their rank on log-log axes, one colour per layer from
# shallow (dark blue) to deep (orange).  A flat spectrum is a whitened
# layer; a steep one, features that are nearly collinear.  One panel per
# file (the last checkpoint of each), side by side on shared axes.
#
# Variables from normscope: datadir, out, fmt, scriptdir; nfiles, labels
# ('|'-separated: panel titles), subtitle (one file: its label, step,
# samples and mode; several: what they share), notes ('|'-separated, per
# file: layers without eigenvalues), nlayers (layers drawn per file,
# space-separated), layernames (the layers of all files in order), maxrank,
# rello (lowest lambda_i / lambda_1 above the floor 1e-12).
# Data: datadir/act<f>.dat, one block per layer (gnuplot index k), rows:
# rank lambda_i/lambda_1 (NaN at or below 1e-12 of the largest).
# To redraw by hand:
#   gnuplot -e "datadir='DIR/act-spectrum-data'; out='x.png'; fmt='png'; \
#               scriptdir='plots'; nfiles=1; labels='bn cnn'; \
#               subtitle='bn cnn: step 16, 500 samples of fashion-mnist, eval mode'; \
#               notes=''; nlayers='7'; layernames='00-conv 02-relu 03-conv \
#               05-relu 06-conv 08-relu 10-dense'; maxrank=128; rello=1e-6" \
#           plots/act-spectrum.gp

ncols = (nfiles <= 3 ? nfiles : (nfiles == 4 ? 2 : 3))
nrows = int(ceil(1.0 * nfiles / ncols))
width = (nfiles == 1 ? 900 : 80 + 560 * ncols)
height = (nfiles == 1 ? 640 : 100 + 480 * nrows)
load scriptdir . '/common.gp'

field(s, i) = (i <= 1) ? (strstrt(s, '|') ? s[1:strstrt(s, '|') - 1] : s) \
                       : (strstrt(s, '|') ? field(s[strstrt(s, '|') + 1:], i - 1) : '')
nl(f) = int(word(nlayers, f))
off(f) = (f <= 1) ? 0 : off(f - 1) + nl(f - 1)
layername(f, k) = word(layernames, off(f) + k + 1)
afile(f) = sprintf('%s/act%d.dat', datadir, f)
note(f) = field(notes, f)
# Shallow layers dark, deep ones light: matplotlib's plasma from its dark
# blue to its orange (without the pale yellow end), whose hues stay apart
# where a two-colour blend passes through grey.
shade(f, k) = (nl(f) > 1) ? 1.0 * k / (nl(f) - 1) : 0.0
ramp = '13 7 135  106 0 168  177 42 144  225 100 98  248 149 64'
anchor(j, c) = int(word(ramp, 3 * j + c + 1))
seg(t) = (t >= 1 ? 3 : int(t * 4))
chan(t, c) = anchor(seg(t), c) + (t * 4 - seg(t)) * (anchor(seg(t) + 1, c) - anchor(seg(t), c))
rgbof(t) = sprintf('#%02x%02x%02x', int(chan(t, 0)), int(chan(t, 1)), int(chan(t, 2)))
# Legends name at most about ten layers: the first, the last and evenly
# spaced ones between.
every(f) = (nl(f) <= 12) ? 1 : int(ceil((nl(f) - 1) / 9.0))
named(f, k) = (k == 0 || k == nl(f) - 1 || k % every(f) == 0) && !(k != nl(f) - 1 && nl(f) - 1 - k < every(f) / 2.0)
layertitle(f, k) = named(f, k) ? layername(f, k) : ''

tm = 1 - (nfiles > 1 && strlen(subtitle) ? 95.0 : 70.0) / height
bm = 60.0 / height
vs = (nrows > 1 ? 110.0 / height : 0)
set multiplot layout nrows,ncols margins (nfiles == 1 ? 0.1 : 0.075),0.985,bm,tm spacing 0.07,vs \
    title 'Covariance eigenvalues of the activations, per layer (dark: shallow, light: deep)' \
          . (strlen(subtitle) ? "\n" . subtitle : '')
set logscale xy
set format y '%.0e'
set format x '%g'
set xlabel 'rank i'
set ylabel 'lambda_i / lambda_1'
set xrange [1:(maxrank > 1 ? maxrank : 2)]
set yrange [(rello < 1 ? rello / 3 : 0.01):1.5]
set key bottom left font ',9' samplen 2 spacing 0.85 maxrows 12
set title font ',11'

do for [f = 1:nfiles] {
    t = (nfiles > 1 ? field(labels, f) : '') . (strlen(note(f)) ? sprintf(' (%s)', note(f)) : '')
    set title t
    if (nl(f) == 0) {
        set label 1 'no eigenvalues in this file' at graph 0.5, 0.5 center textcolor rgb '#808080'
        plot NaN notitle
        unset label 1
    } else {
        plot for [k = 0:nl(f) - 1] afile(f) index k using 1:2 with lines \
             linecolor rgb rgbof(shade(f, k)) linewidth 1.8 title layertitle(f, k)
    }
}

unset multiplot
set output
