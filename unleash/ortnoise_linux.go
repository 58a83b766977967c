package unleash

import (
	"bufio"
	"bytes"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// apiProbeNoise starts the line that ONNX Runtime's OrtApiBase.GetApi prints to the process's
// stderr for every API version newer than the library's. The onnx backend (compute-onnx) asks
// for the newest version it knows first and steps down until the library answers, so a
// library older than the backend prints one such line per version it skips ("The requested API
// version [26] is not available, only API versions [1, 24] are supported in this build", with
// ORT 1.24). GetApi writes it with fprintf before any ORT environment or logger exists, so no
// logging level silences it.
var apiProbeNoise = []byte("The requested API version [")

// withoutAPIProbeNoise runs f with file descriptor 2 fed through a pipe that passes every line
// on to the real stderr except ONNX Runtime's API-version probe lines. It is meant for the short
// call that loads the library; output of other goroutines in that time passes through in order.
// When the pipe cannot be set up, f runs with stderr as it is.
func withoutAPIProbeNoise(f func() error) error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return f()
	}
	saved, err := unix.Dup(2)
	if err != nil {
		pr.Close()
		pw.Close()
		return f()
	}
	if err := unix.Dup2(int(pw.Fd()), 2); err != nil {
		unix.Close(saved)
		pr.Close()
		pw.Close()
		return f()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		copyFiltered(fdWriter(saved), pr)
	}()
	ferr := f()
	unix.Dup2(saved, 2) // restore first: nothing new enters the pipe
	pw.Close()          // the copy sees EOF once it has drained the pipe
	<-done
	pr.Close()
	unix.Close(saved)
	return ferr
}

// copyFiltered copies r to w line by line, leaving out the API-version probe lines.
func copyFiltered(w io.Writer, r io.Reader) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && !bytes.HasPrefix(line, apiProbeNoise) {
			w.Write(line)
		}
		if err != nil {
			return
		}
	}
}

// fdWriter writes to a file descriptor.
type fdWriter int

func (fd fdWriter) Write(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Write(int(fd), b[n:])
		if err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}
