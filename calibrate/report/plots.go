package report

import (
	"fmt"
	"image/color"
	"math"
	"slices"

	"github.com/oodguard/oodguard/calibrate"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

var (
	idColor  = color.NRGBA{R: 31, G: 119, B: 180, A: 150}
	oodColor = color.NRGBA{R: 214, G: 39, B: 40, A: 150}
	thColor  = color.NRGBA{A: 255}
)

const bins = 60

// histogramPNG draws the ID and OOD score densities on shared bins, and the threshold.
func histogramPNG(path, title, xlabel string, id, ood []float64, threshold *float64) error {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range [][]float64{id, ood} {
		for _, v := range s {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if threshold != nil {
		lo, hi = math.Min(lo, *threshold), math.Max(hi, *threshold)
	}
	if !(hi > lo) {
		hi = lo + 1
	}
	width := (hi - lo) / bins
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel + " (higher = more ID)"
	p.Y.Label.Text = "density"
	ymax := 0.0
	for _, s := range []struct {
		name string
		v    []float64
		c    color.Color
	}{{"ID", id, idColor}, {"OOD", ood, oodColor}} {
		h := &plotter.Histogram{Bins: density(s.v, lo, width), Width: width, FillColor: s.c}
		h.LineStyle.Width = 0
		for _, b := range h.Bins {
			ymax = math.Max(ymax, b.Weight)
		}
		p.Add(h)
		p.Legend.Add(fmt.Sprintf("%s (n=%d)", s.name, len(s.v)), h)
	}
	if threshold != nil {
		l, err := plotter.NewLine(plotter.XYs{{X: *threshold, Y: 0}, {X: *threshold, Y: ymax * 1.05}})
		if err != nil {
			return err
		}
		l.LineStyle = draw.LineStyle{Color: thColor, Width: vg.Points(1.5), Dashes: []vg.Length{vg.Points(4), vg.Points(3)}}
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("threshold %.4g", *threshold), l)
	}
	p.Legend.Top = true
	return p.Save(7*vg.Inch, 4*vg.Inch, path)
}

// density bins values on [lo, lo+bins*width) into a histogram that integrates to 1.
func density(v []float64, lo, width float64) []plotter.HistogramBin {
	out := make([]plotter.HistogramBin, bins)
	for i := range out {
		out[i].Min = lo + float64(i)*width
		out[i].Max = out[i].Min + width
	}
	for _, x := range v {
		i := min(int((x-lo)/width), bins-1)
		out[max(i, 0)].Weight++
	}
	if len(v) > 0 {
		for i := range out {
			out[i].Weight /= float64(len(v)) * width
		}
	}
	return out
}

// rocPNG draws the ROC curve (OOD accepted vs ID accepted) and marks the FPR95 point.
func rocPNG(path, title string, id, ood []float64, m calibrate.Metrics) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "FPR: OOD accepted as ID"
	p.Y.Label.Text = "TPR: ID accepted"
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	l, err := plotter.NewLine(rocPoints(id, ood))
	if err != nil {
		return err
	}
	l.LineStyle.Width = vg.Points(1.5)
	l.LineStyle.Color = idColor
	p.Add(l)
	p.Legend.Add(fmt.Sprintf("ROC, AUROC %.2f%%", 100*m.AUROC), l)
	diag, _ := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}})
	diag.LineStyle.Color = color.Gray{Y: 180}
	diag.LineStyle.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
	p.Add(diag)
	pt, err := plotter.NewScatter(plotter.XYs{{X: m.FPR95, Y: m.TPRAtThreshold}})
	if err != nil {
		return err
	}
	pt.GlyphStyle.Color = oodColor
	pt.GlyphStyle.Radius = vg.Points(4)
	pt.GlyphStyle.Shape = draw.CircleGlyph{}
	p.Add(pt)
	p.Legend.Add(fmt.Sprintf("FPR95 %.2f%% at TPR %.2f%%", 100*m.FPR95, 100*m.TPRAtThreshold), pt)
	p.Legend.Left, p.Legend.Top = false, false
	p.Legend.XOffs, p.Legend.YOffs = -vg.Points(5), vg.Points(5)
	return p.Save(5*vg.Inch, 5*vg.Inch, path)
}

// rocPoints returns the tie-grouped ROC curve, thresholds from high to low, at most ~2000
// points (thinned evenly for large sets).
func rocPoints(id, ood []float64) plotter.XYs {
	type s struct {
		v  float64
		id bool
	}
	all := make([]s, 0, len(id)+len(ood))
	for _, v := range id {
		all = append(all, s{v, true})
	}
	for _, v := range ood {
		all = append(all, s{v, false})
	}
	slices.SortFunc(all, func(a, b s) int {
		switch {
		case a.v > b.v:
			return -1
		case a.v < b.v:
			return 1
		}
		return 0
	})
	pts := plotter.XYs{{X: 0, Y: 0}}
	tp, fp := 0, 0
	step := max(1, len(all)/2000)
	kept := -step
	for i := 0; i < len(all); i++ {
		if all[i].id {
			tp++
		} else {
			fp++
		}
		last := i == len(all)-1 || all[i+1].v != all[i].v
		if last && (i-kept >= step || i == len(all)-1) {
			kept = i
			pts = append(pts, plotter.XY{X: float64(fp) / float64(max(1, len(ood))), Y: float64(tp) / float64(max(1, len(id)))})
		}
	}
	return pts
}
