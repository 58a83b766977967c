package report

import (
	"fmt"
	"html/template"
	"io"
)

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct":   func(v float64) string { return fmt.Sprintf("%.2f", 100*v) },
	"deref": func(v *float64) float64 { return *v },
	"ptr": func(v *float64) string {
		if v == nil {
			return "–"
		}
		return fmt.Sprintf("%.2f", 100**v)
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>oodguard report: {{.ID.Name}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child{text-align:left}tr.mean td{font-weight:bold}
.conv{color:#555;font-size:.9em}img{max-width:100%;margin:.5em .5em 0 0;border:1px solid #eee}
.plots{display:flex;flex-wrap:wrap;align-items:flex-start}
</style></head><body>
<h1>OOD detection report</h1>
<p>Model <code>{{.Model}}</code> (sha256 <code>{{printf "%.16s" .ModelSHA256}}…</code>), {{.Tool}}, {{.Created.Format "2006-01-02 15:04 MST"}}, {{printf "%.1f" .Seconds}} s.<br>
ID test set: <b>{{.ID.Name}}</b> ({{.ID.Count}} images){{if .Accuracy}}, top-1 accuracy <b>{{ptr .Accuracy}}%</b>{{end}}.
OOD sets: {{range $i, $s := .OOD}}{{if $i}}, {{end}}<b>{{$s.Name}}</b> ({{$s.Count}}){{end}}.</p>
<p class="conv">{{.Convention}}</p>
{{range .Scores}}
<h2>{{.Score}}{{if .Threshold}} <small>(calibrated threshold {{printf "%.6g" (deref .Threshold)}})</small>{{end}}</h2>
<table><tr><th>OOD set</th><th>FPR95 ↓</th><th>FPR95 (OpenOOD) ↓</th><th>AUROC ↑</th><th>AUPR-In ↑</th><th>AUPR-Out ↑</th><th>detection error ↓</th>{{if .Threshold}}<th>OOD accepted at threshold ↓</th>{{end}}</tr>
{{$th := .Threshold}}{{range .Sets}}<tr><td>{{.Name}}</td><td>{{pct .Metrics.FPR95}}</td><td>{{pct .Metrics.FPR95OpenOOD}}</td><td>{{pct .Metrics.AUROC}}</td><td>{{pct .Metrics.AUPRIn}}</td><td>{{pct .Metrics.AUPROut}}</td><td>{{pct .Metrics.DetectionError}}</td>{{if $th}}<td>{{ptr .AcceptedOOD}}</td>{{end}}</tr>
{{end}}{{if gt (len .Sets) 1}}<tr class="mean"><td>mean</td><td>{{pct .Mean.FPR95}}</td><td>{{pct .Mean.FPR95OpenOOD}}</td><td>{{pct .Mean.AUROC}}</td><td>{{pct .Mean.AUPRIn}}</td><td>{{pct .Mean.AUPROut}}</td><td>{{pct .Mean.DetectionError}}</td>{{if $th}}<td></td>{{end}}</tr>{{end}}
</table>
{{range .Sets}}<div class="plots"><img src="{{.Hist}}" alt="score histogram vs {{.Name}}"><img src="{{.ROC}}" alt="ROC vs {{.Name}}" width="400"></div>
{{end}}{{end}}
</body></html>
`))

func writeHTML(w io.Writer, r *Report) error { return page.Execute(w, r) }
