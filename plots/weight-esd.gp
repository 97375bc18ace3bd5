# normscope: empirical spectral densities of the weights from `normscope
# spectrum` result files (`normscope plot SPEC.h5 ... --what weight-esd -o
# DIR`): for up to six dense and conv weights evenly spaced through depth
# (the first, ..., the last), the density of the eigenvalues of W^T W (the
# singular values squared; a conv kernel reshaped out x in*k*k) on
# log-spaced bins, log-log, as a step line, and dashed the power law
# x^-alpha that the analysis fitted above xmin (maximum likelihood, Clauset,
# Shalizi and Newman 2009), scaled to the tail's share of the eigenvalues;
# alpha in the legend.  Files (the last checkpoint of each) overlaid in
# colours, one panel per weight.
#
# Variables from normscope: datadir, out, fmt, scriptdir; nfiles, labels,
# notes ('|'-separated), subtitle (one file: its label, step, samples
# and mode; several: what they share), npanels, titles ('|'-separated panel
# titles), alphas (space-separated, panel by panel, file by file; '-'
# where there is no fit), xmins (the same for xmin), hasw (per file 1 when
# it has weights), xranges (per panel the smallest and largest eigenvalue,
# space-separated).
# Data: datadir/esd<f>.dat and fit<f>.dat, one block per panel (gnuplot
# index p): x density (esd: the two edges of each of about 1.5 sqrt(n)
# log-spaced bins over the file's own range, NaN for an empty one; fit:
# 41 points from xmin to the largest eigenvalue).
# To redraw by hand:
#   gnuplot -e "datadir='DIR/weight-esd-data'; out='x.png'; fmt='png'; \
#               scriptdir='plots'; nfiles=1; labels='bn cnn'; \
#               subtitle='bn cnn: step 16, 500 samples of fashion-mnist, eval mode'; \
#               notes=''; npanels=2; titles='00-conv (9 eigenvalues)|03-conv \
#               (64 eigenvalues)'; alphas='2.93 4.81'; xmins='0.81 0.39'; \
#               hasw='1'; xranges='0.42 2.6 0.087 0.74'" plots/weight-esd.gp

ncols = (npanels <= 3 ? npanels : (npanels == 4 ? 2 : 3))
nrows = int(ceil(1.0 * npanels / ncols))
width = 80 + 520 * ncols
width = (width < 900 ? 900 : width)

field(s, i) = (i <= 1) ? (strstrt(s, '|') ? s[1:strstrt(s, '|') - 1] : s) \
                       : (strstrt(s, '|') ? field(s[strstrt(s, '|') + 1:], i - 1) : '')
efile(f) = sprintf('%s/esd%d.dat', datadir, f)
ffile(f) = sprintf('%s/fit%d.dat', datadir, f)
alpha(f, p) = word(alphas, p * nfiles + f)
xmin(f, p) = word(xmins, p * nfiles + f)
has(f) = int(word(hasw, f))
note(f) = field(notes, f)
# The panels' legends give the fits; with several files the colours are
# named once, above the panels.
keytitle(f, p) = !has(f) ? 'no weights' : alpha(f, p) eq '-' ? 'no power-law fit' : \
                 'alpha = ' . alpha(f, p) . ' above ' . xmin(f, p)

# Room at the top for the title and, with several files, one legend of
# them: as many columns as the longest label allows (about 8 px a
# character at the key's font, plus the sample).
maxlen = 10
do for [f = 1:nfiles] { maxlen = (strlen(field(labels, f) . note(f)) + 6 > maxlen ? strlen(field(labels, f) . note(f)) + 6 : maxlen) }
keycols = int((width - 150) / (8.0 * maxlen + 70))
keycols = (keycols < 1 ? 1 : (keycols > nfiles ? nfiles : keycols))
keyrows = int(ceil(1.0 * nfiles / keycols))
keyh = (nfiles > 1 ? 18 * keyrows + 12 : 20)
height = 140 + keyh + 440 * nrows
load scriptdir . '/common.gp'
# A subtitle takes a second line of the title.
th = (strlen(subtitle) ? 20.0 : 0)
top = 1 - (75.0 + th + keyh) / height
left = 0.075
gap = 0.07
pw = (0.985 - left - (ncols - 1) * gap) / ncols
vgap = 110.0 / height
ph = (top - 60.0 / height - (nrows - 1) * vgap) / nrows
panel(p) = sprintf('set lmargin at screen %g; set rmargin at screen %g; set tmargin at screen %g; set bmargin at screen %g', \
                   left + (p % ncols) * (pw + gap), left + (p % ncols) * (pw + gap) + pw, \
                   top - int(p / ncols) * (ph + vgap), top - int(p / ncols) * (ph + vgap) - ph)

set multiplot title 'Eigenvalue density of W^T W per weight (solid: histogram, dashed: power-law fit x^-alpha above xmin)' \
          . (strlen(subtitle) ? "\n" . subtitle : '')
set logscale xy
set format x '%g'
set format y '%g'
set xtics font ',9'
set ytics font ',9'
set xlabel 'eigenvalue of W^T W (singular value squared)'
set ylabel 'density'
# Each panel on its own scales: weights differ by orders of magnitude.
set autoscale y
xlo(p) = real(word(xranges, 2 * p + 1))
xhi(p) = real(word(xranges, 2 * p + 2))
# The density falls to the right: the lower left corner is free.
set key bottom left font ',9' samplen 2 spacing 0.9
set title font ',11'
# NaN (an empty bin) breaks the step line: no "set datafile missing".

do for [p = 0:npanels - 1] {
    eval panel(p)
    set title field(titles, p + 1)
    set xrange [xlo(p) / 1.05:xhi(p) * 1.05]
    # Ranges of two decades or less get tics at 1, 2 and 5 of each.
    if (xhi(p) / xlo(p) < 100) {
        set xtics () font ',9'
        do for [e = floor(log10(xlo(p))):ceil(log10(xhi(p)))] {
            set xtics add (10.0 ** e, 2 * 10.0 ** e, 5 * 10.0 ** e)
        }
    } else {
        set xtics autofreq font ',9'
    }
    plot for [f = 1:nfiles] efile(f) index p using 1:2 with lines linetype f linewidth 2 \
             title keytitle(f, p), \
         for [f = 1:nfiles] ffile(f) index p using 1:2 with lines linetype f linewidth 1.5 \
             dashtype 2 notitle
}

# ------------------------------------------- one legend above the panels
if (nfiles > 1) {
    set lmargin at screen left
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
    set key inside center center horizontal maxrows keyrows font ',10' samplen 2.5 width 1 noopaque nobox
    plot [0:1][0:1] for [f = 1:nfiles] NaN with lines linetype f linewidth 2 \
         title field(labels, f) . (strlen(note(f)) ? ' (' . note(f) . ')' : '')
}

unset multiplot
set output
