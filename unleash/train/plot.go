package train

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// curve is one line of the training plot.
type curve struct {
	name  string
	color color.Color
	dash  bool
	value func(Epoch) *float64
}

func ptr(v float64) *float64 { return &v }

var curves = []curve{
	{"train accuracy", color.NRGBA{R: 31, G: 119, B: 180, A: 255}, true, func(e Epoch) *float64 { return ptr(e.TrainAcc) }},
	{"val accuracy", color.NRGBA{R: 31, G: 119, B: 180, A: 255}, false, func(e Epoch) *float64 { return e.ValAcc }},
	{"FPR95 (energy)", color.NRGBA{R: 214, G: 39, B: 40, A: 255}, false, func(e Epoch) *float64 { return e.FPR95 }},
	{"AUROC (energy)", color.NRGBA{R: 44, G: 160, B: 44, A: 255}, false, func(e Epoch) *float64 { return e.AUROC }},
}

// plotCurves draws accuracy, FPR95 and AUROC (percent) against the epoch into a PNG file.
func plotCurves(path string, l *Log) error {
	p := plot.New()
	legend := plot.NewLegend()
	p.Title.Text = l.Arch
	if l.OODVal != nil {
		p.Title.Text += fmt.Sprintf("\nID %s, OOD %s", l.IDVal.Name, l.OODVal.Name)
	}
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = "percent"
	p.Y.Min, p.Y.Max = 0, 100
	n := max(l.Epochs, len(l.Runs))
	p.X.Min, p.X.Max = 0.5, float64(n)+0.5
	p.X.Tick.Marker = epochTicks(n)
	p.Add(plotter.NewGrid())
	for _, c := range curves {
		var pts plotter.XYs
		for _, e := range l.Runs {
			if v := c.value(e); v != nil {
				pts = append(pts, plotter.XY{X: float64(e.Epoch), Y: 100 * *v})
			}
		}
		if len(pts) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		line.LineStyle.Color = c.color
		line.LineStyle.Width = vg.Points(1.5)
		if c.dash {
			line.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		points.GlyphStyle = draw.GlyphStyle{Color: c.color, Radius: vg.Points(2.5), Shape: draw.CircleGlyph{}}
		p.Add(line, points)
		legend.Add(c.name, line, points)
	}
	// The plot on the left, the legend to its right, outside the data.
	const w, h, legendW = 8 * vg.Inch, 4 * vg.Inch, 1.6 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	plotArea, legendArea := dc, dc
	plotArea.Max.X = dc.Max.X - legendW
	legendArea.Min.X = dc.Max.X - legendW
	p.Draw(plotArea)
	legend.Top, legend.Left = true, true
	legend.XOffs, legend.YOffs = vg.Points(8), -vg.Points(30)
	legend.Draw(legendArea)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// epochTicks labels whole epochs, about ten of them.
func epochTicks(n int) plot.Ticker {
	step := max(1, (n+9)/10)
	return plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		var ticks []plot.Tick
		for e := 1; e <= n; e++ {
			t := plot.Tick{Value: float64(e)}
			if e%step == 0 || e == 1 {
				t.Label = fmt.Sprint(e)
			}
			ticks = append(ticks, t)
		}
		return ticks
	})
}
