# normscope: the look shared by every figure, loaded by each plots/<kind>.gp
# after it sets the figure size in pixels (width, height).
#
# Variables from normscope: out (file to write), fmt ('png', 'svg' or 'pdf').
# Defines: colour(i), the i-th line colour as '#rrggbb'; faded(i), the same
# colour mostly transparent; linetypes 1..10 in those colours.

if (!exists("width")) width = 1200
if (!exists("height")) height = 450

if (fmt eq 'png') {
    set terminal pngcairo size width,height noenhanced font 'Sans,11' linewidth 1.2 background rgb 'white'
} else {
    if (fmt eq 'svg') {
        set terminal svg size width,height dynamic noenhanced font 'Sans,11' linewidth 1.2 background rgb 'white'
    } else {
        if (fmt eq 'pdf') {
            # 128 px per inch matches the proportions of the png terminal.
            set terminal pdfcairo size (width / 128.0),(height / 128.0) noenhanced font 'Sans,12' linewidth 1.2
        } else {
            print sprintf("unknown figure format '%s'", fmt)
            exit status 2
        }
    }
}
set output out

# Tableau 10: distinct hues that stay apart for the common colour-vision
# deficiencies; more runs than colours cycle.
palette10 = '1f77b4 ff7f0e 2ca02c d62728 9467bd 8c564b e377c2 7f7f7f bcbd22 17becf'
colour(i) = '#' . word(palette10, int(i - 1) % 10 + 1)
faded(i) = '#b0' . word(palette10, int(i - 1) % 10 + 1)
do for [i = 1:10] {
    set linetype i linecolor rgb colour(i) linewidth 2 pointtype 7 pointsize 0.7 dashtype solid
}
set linetype cycle 10

set style line 100 linecolor rgb '#dcdcdc' linewidth 0.6 dashtype solid
set grid xtics ytics mxtics mytics back linestyle 100, linestyle 100
set border 3 linecolor rgb '#404040'
set tics nomirror out scale 0.6 textcolor rgb '#303030'
set key opaque box linecolor rgb '#c8c8c8' samplen 2.5 spacing 1.1 width 1
set title font ',12'
