package batchscore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/oodguard/oodguard/dataset"
	"github.com/oodguard/oodguard/device/preprocess"
	ort "github.com/oodguard/oodguard/runtime"
)

// Pool scores datasets on several sessions of one model at once. Each session has a worker
// goroutine, locked to its OS thread for the pool's life, that takes the next batch from the
// shared reader (reading and preprocessing it while it holds the reader), runs it on its own
// session and scores it while the others do the same; results come out in dataset order
// whatever order the batches finish in.
//
// Sessions of one intra-op thread each avoid what slows a multi-threaded session on the 2-core
// machine the README's numbers come from, a slower run after every pause between two runs
// (runtime.BenchmarkRunAfterPause), but there the two vCPUs also slow each other down: two
// 1-thread sessions scored resnet32 3–6% faster than one 2-thread session and cnn28 from 5%
// slower to 2% faster. One pool of one session is the default. The workers live as long as the
// pool, so that their threads keep their cores from one dataset to the next. Each session holds
// its own copy of the model and of its activations: memory grows with the number of sessions.
//
// A Pool runs one dataset at a time: Run is not safe for concurrent use.
type Pool struct {
	clfs    []*ort.Classifier
	runners []*ort.Runner
	jobs    []chan *scoring
	exited  sync.WaitGroup
	batch   int
}

// NewPool starts one worker per session, for batches of batch images (64 when 0). The sessions
// must be of one model; the pool does not close them.
func NewPool(clfs []*ort.Classifier, batch int) (*Pool, error) {
	if len(clfs) == 0 {
		return nil, errors.New("batchscore: a pool needs at least one session")
	}
	if batch == 0 {
		batch = 64
	}
	if batch < 0 {
		return nil, fmt.Errorf("batchscore: batch size %d must be positive", batch)
	}
	for _, c := range clfs[1:] {
		if c.SHA256() != clfs[0].SHA256() {
			return nil, fmt.Errorf("batchscore: a pool's sessions must run one model, not %s and %s", clfs[0].Path(), c.Path())
		}
	}
	p := &Pool{clfs: clfs, batch: batch}
	for _, c := range clfs {
		rn, err := c.NewRunner(batch)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.runners = append(p.runners, rn)
	}
	for i := range clfs {
		jobs := make(chan *scoring)
		p.jobs = append(p.jobs, jobs)
		p.exited.Add(1)
		go func() {
			defer p.exited.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for s := range jobs {
				s.work(p.clfs[i], p.runners[i])
				s.wg.Done()
			}
		}()
	}
	return p, nil
}

// Run scores every sample of r as the package-level Run does, on all the pool's sessions.
// opts.Batch must be 0 or the pool's batch size.
func (p *Pool) Run(ctx context.Context, spec preprocess.Spec, r dataset.Reader, opts Options) (*Result, error) {
	if opts.Batch != 0 && opts.Batch != p.batch {
		return nil, fmt.Errorf("batchscore: the pool runs batches of %d, not %d", p.batch, opts.Batch)
	}
	opts.Batch = p.batch
	s, err := newScoring(ctx, p.clfs[0], spec, r, opts) // NewPool made sure they run one model
	if err != nil {
		return nil, err
	}
	s.wg.Add(len(p.jobs))
	for _, jobs := range p.jobs {
		jobs <- s
	}
	s.wg.Wait()
	return s.result()
}

// Close stops the workers and releases the runners; the sessions stay open.
func (p *Pool) Close() error {
	for _, jobs := range p.jobs {
		close(jobs)
	}
	p.exited.Wait()
	p.jobs = nil
	for _, rn := range p.runners {
		rn.Close()
	}
	p.runners = nil
	return nil
}
