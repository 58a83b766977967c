package detect

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// eigSym returns the eigenvalues of the symmetric n×n matrix a (row-major) in descending order
// and the matching unit eigenvectors as the columns of v (row-major n×n). It reduces a to
// tridiagonal form with Householder reflections and diagonalises that with the implicit QL
// method (the EISPACK tred2/tql2 algorithms, as in JAMA, with rows and columns swapped so that
// the inner loops walk rows), O(n³): 0.03 s for n = 256 and 0.7 s for n = 512 on the 2-vCPU
// development VM (n = 2048, ResNet-50's features, about a minute). It does not change a.
func eigSym(a []float64, n int) (vals []float64, v []float64, err error) {
	if len(a) != n*n {
		return nil, nil, fmt.Errorf("eigSym: %d values for a %d×%d matrix", len(a), n, n)
	}
	for _, x := range a {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, nil, errors.New("eigSym: the matrix has a non-finite value")
		}
	}
	if n == 0 {
		return nil, nil, nil
	}
	V := make([]float64, n*n) // V[i*n+j]; symmetrised copy of a
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			V[i*n+j] = (a[i*n+j] + a[j*n+i]) / 2
		}
	}
	d := make([]float64, n)
	e := make([]float64, n)
	tred2(V, d, e, n) // V now holds the transformation's transpose: what tql2 rotates by rows
	T := V
	if err := tql2(T, d, e, n); err != nil {
		return nil, nil, err
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return d[order[i]] > d[order[j]] })
	vals = make([]float64, n)
	v = make([]float64, n*n)
	for c, o := range order {
		vals[c] = d[o]
		for r := 0; r < n; r++ {
			v[r*n+c] = T[o*n+r]
		}
	}
	return vals, v, nil
}

// tred2 reduces the symmetric matrix in W to tridiagonal form (diagonal d, subdiagonal e[1:])
// and leaves the transpose of the accumulated orthogonal transformation in W. It is JAMA's tred2
// with every V[a][b] read as W[b][a]: its inner loops then walk rows, not columns.
func tred2(W, d, e []float64, n int) {
	for j := 0; j < n; j++ {
		d[j] = W[j*n+(n-1)]
	}
	for i := n - 1; i > 0; i-- {
		scale, h := 0.0, 0.0
		for k := 0; k < i; k++ {
			scale += math.Abs(d[k])
		}
		if scale == 0 {
			e[i] = d[i-1]
			for j := 0; j < i; j++ {
				d[j] = W[j*n+(i-1)]
				W[j*n+i] = 0
				W[i*n+j] = 0
			}
		} else {
			for k := 0; k < i; k++ {
				d[k] /= scale
				h += d[k] * d[k]
			}
			f := d[i-1]
			g := math.Sqrt(h)
			if f > 0 {
				g = -g
			}
			e[i] = scale * g
			h -= f * g
			d[i-1] = f - g
			for j := 0; j < i; j++ {
				e[j] = 0
			}
			for j := 0; j < i; j++ {
				f = d[j]
				W[i*n+j] = f
				g = e[j] + W[j*n+j]*f
				for k := j + 1; k <= i-1; k++ {
					g += W[j*n+k] * d[k]
					e[k] += W[j*n+k] * f
				}
				e[j] = g
			}
			f = 0
			for j := 0; j < i; j++ {
				e[j] /= h
				f += e[j] * d[j]
			}
			hh := f / (h + h)
			for j := 0; j < i; j++ {
				e[j] -= hh * d[j]
			}
			for j := 0; j < i; j++ {
				f = d[j]
				g = e[j]
				for k := j; k <= i-1; k++ {
					W[j*n+k] -= f*e[k] + g*d[k]
				}
				d[j] = W[j*n+(i-1)]
				W[j*n+i] = 0
			}
		}
		d[i] = h
	}
	for i := 0; i < n-1; i++ {
		W[i*n+(n-1)] = W[i*n+i]
		W[i*n+i] = 1
		h := d[i+1]
		if h != 0 {
			for k := 0; k <= i; k++ {
				d[k] = W[(i+1)*n+k] / h
			}
			for j := 0; j <= i; j++ {
				g := 0.0
				for k := 0; k <= i; k++ {
					g += W[(i+1)*n+k] * W[j*n+k]
				}
				for k := 0; k <= i; k++ {
					W[j*n+k] -= g * d[k]
				}
			}
		}
		for k := 0; k <= i; k++ {
			W[(i+1)*n+k] = 0
		}
	}
	for j := 0; j < n; j++ {
		d[j] = W[j*n+(n-1)]
		W[j*n+(n-1)] = 0
	}
	W[(n-1)*n+(n-1)] = 1
	e[0] = 0
}

// tql2 diagonalises the tridiagonal matrix (d, e) by the implicit QL method, applying the
// rotations to the rows of T (the transposed transformation of tred2). The eigenvalues are left
// in d, unsorted, and the eigenvectors in T's rows.
func tql2(T, d, e []float64, n int) error {
	for i := 1; i < n; i++ {
		e[i-1] = e[i]
	}
	e[n-1] = 0
	f, tst1 := 0.0, 0.0
	const eps = 0x1p-52
	for l := 0; l < n; l++ {
		tst1 = math.Max(tst1, math.Abs(d[l])+math.Abs(e[l]))
		m := l
		for m < n-1 && math.Abs(e[m]) > eps*tst1 {
			m++
		}
		if m > l {
			for iter := 0; ; iter++ {
				if iter == 60 {
					return fmt.Errorf("eigSym: no convergence for eigenvalue %d after 60 iterations", l)
				}
				g := d[l]
				p := (d[l+1] - g) / (2 * e[l])
				r := math.Hypot(p, 1)
				if p < 0 {
					r = -r
				}
				d[l] = e[l] / (p + r)
				d[l+1] = e[l] * (p + r)
				dl1 := d[l+1]
				h := g - d[l]
				for i := l + 2; i < n; i++ {
					d[i] -= h
				}
				f += h
				p = d[m]
				c, c2, c3 := 1.0, 1.0, 1.0
				el1 := e[l+1]
				s, s2 := 0.0, 0.0
				for i := m - 1; i >= l; i-- {
					c3 = c2
					c2 = c
					s2 = s
					g = c * e[i]
					h = c * p
					r = math.Hypot(p, e[i])
					e[i+1] = s * r
					s = e[i] / r
					c = p / r
					p = c*d[i] - s*g
					d[i+1] = h + s*(c*g+s*d[i])
					ri, ri1 := T[i*n:(i+1)*n], T[(i+1)*n:(i+2)*n]
					for k := range ri {
						hk := ri1[k]
						ri1[k] = s*ri[k] + c*hk
						ri[k] = c*ri[k] - s*hk
					}
				}
				p = -s * s2 * c3 * el1 * e[l] / dl1
				e[l] = s * p
				d[l] = c * p
				if math.Abs(e[l]) <= eps*tst1 {
					break
				}
			}
		}
		d[l] += f
		e[l] = 0
	}
	return nil
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
