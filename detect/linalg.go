package detect

import (
	"fmt"
	"math"
	"sort"
)

// eigSym returns the eigenvalues of the symmetric n×n matrix a (row-major) in descending order
// and the matching unit eigenvectors as the columns of v (row-major n×n). It uses cyclic Jacobi
// rotations, accurate to a few ulps of the largest eigenvalue; its cost is O(n³) per sweep with
// about 6-10 sweeps, seconds for n = 512, and it does not change a.
func eigSym(a []float64, n int) (vals []float64, v []float64, err error) {
	if len(a) != n*n {
		return nil, nil, fmt.Errorf("eigSym: %d values for a %d×%d matrix", len(a), n, n)
	}
	m := append([]float64(nil), a...)
	v = make([]float64, n*n)
	for i := 0; i < n; i++ {
		v[i*n+i] = 1
		for j := 0; j < i; j++ {
			if m[i*n+j] != m[j*n+i] {
				avg := (m[i*n+j] + m[j*n+i]) / 2
				m[i*n+j], m[j*n+i] = avg, avg
			}
		}
	}
	for sweep := 0; ; sweep++ {
		off, norm := 0.0, 0.0
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				x := m[i*n+j] * m[i*n+j]
				norm += x
				if i != j {
					off += x
				}
			}
		}
		if off <= 1e-30*norm || off == 0 {
			break
		}
		if sweep == 100 {
			return nil, nil, fmt.Errorf("eigSym: no convergence after 100 sweeps (off-diagonal %g of %g)", math.Sqrt(off), math.Sqrt(norm))
		}
		for p := 0; p < n-1; p++ {
			for q := p + 1; q < n; q++ {
				apq := m[p*n+q]
				if apq == 0 {
					continue
				}
				app, aqq := m[p*n+p], m[q*n+q]
				theta := (aqq - app) / (2 * apq)
				t := 1 / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				if theta < 0 {
					t = -t
				}
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				for k := 0; k < n; k++ { // columns p and q
					mkp, mkq := m[k*n+p], m[k*n+q]
					m[k*n+p] = c*mkp - s*mkq
					m[k*n+q] = s*mkp + c*mkq
				}
				for k := 0; k < n; k++ { // rows p and q
					mpk, mqk := m[p*n+k], m[q*n+k]
					m[p*n+k] = c*mpk - s*mqk
					m[q*n+k] = s*mpk + c*mqk
				}
				m[p*n+q], m[q*n+p] = 0, 0
				for k := 0; k < n; k++ {
					vkp, vkq := v[k*n+p], v[k*n+q]
					v[k*n+p] = c*vkp - s*vkq
					v[k*n+q] = s*vkp + c*vkq
				}
			}
		}
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return m[order[i]*n+order[i]] > m[order[j]*n+order[j]] })
	vals = make([]float64, n)
	sorted := make([]float64, n*n)
	for c, o := range order {
		vals[c] = m[o*n+o]
		for r := 0; r < n; r++ {
			sorted[r*n+c] = v[r*n+o]
		}
	}
	return vals, sorted, nil
}

// pinvCutoff is scipy.linalg.pinvh's default: eigenvalues at most n·eps·max|λ| in magnitude
// count as zero (sklearn's EmpiricalCovariance computes its precision with it).
func pinvCutoff(vals []float64) float64 {
	max := 0.0
	for _, l := range vals {
		max = math.Max(max, math.Abs(l))
	}
	return max * float64(len(vals)) * 0x1p-52
}

// originU returns u = -pinv(W)·b for the K×D matrix W, through the eigenvectors of W·Wᵀ (K×K):
// pinv(W) = Wᵀ·pinv(W·Wᵀ).
func originU(w, b []float64, k, d int) ([]float64, error) {
	g := make([]float64, k*k)
	for i := 0; i < k; i++ {
		for j := 0; j < k; j++ {
			s := 0.0
			for t := 0; t < d; t++ {
				s += w[i*d+t] * w[j*d+t]
			}
			g[i*k+j] = s
		}
	}
	vals, vecs, err := eigSym(g, k)
	if err != nil {
		return nil, err
	}
	// pinv(G)·b with numpy.linalg.pinv's cutoff on W's singular values (rcond 1e-15·σmax,
	// i.e. 1e-30·λmax on G's eigenvalues).
	cut := 1e-30 * vals[0]
	y := make([]float64, k)
	for c := 0; c < k; c++ {
		if vals[c] <= cut {
			continue
		}
		dot := 0.0
		for r := 0; r < k; r++ {
			dot += vecs[r*k+c] * b[r]
		}
		for r := 0; r < k; r++ {
			y[r] += vecs[r*k+c] * dot / vals[c]
		}
	}
	u := make([]float64, d)
	for t := 0; t < d; t++ {
		s := 0.0
		for i := 0; i < k; i++ {
			s += w[i*d+t] * y[i]
		}
		u[t] = -s
	}
	return u, nil
}
