package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// ORTVersion is the ONNX Runtime release that github.com/yalue/onnxruntime_go v1.27.0 is built
// against. Libraries of the same minor release work; others fail to load.
const ORTVersion = "1.24.1"

// EnvLibrary names the environment variable that points at the ONNX Runtime library.
const EnvLibrary = "ONNXRUNTIME_LIB"

// ErrLibraryNotFound is returned by FindLibrary when no candidate exists.
var ErrLibraryNotFound = errors.New("ONNX Runtime library not found")

// CacheDir is where scripts/fetch-onnxruntime.sh puts the library, relative to the repository
// root, for the given GOARCH.
func CacheDir(goarch string) string {
	return filepath.Join(".cache", "onnxruntime", ORTVersion, "linux-"+goarch)
}

// FindLibrary returns the path of the ONNX Runtime shared library. It looks, in order, at
// flagPath (a command-line flag; used as given when not empty), at $ONNXRUNTIME_LIB, next to the
// running executable (as firmware bundles install it), in the repository cache folder found by
// walking up from the working directory, and in the usual system library folders. The error
// lists every place it looked.
func FindLibrary(flagPath string) (string, error) {
	var cands []candidate
	if flagPath != "" {
		cands = append(cands, candidate{"flag", flagPath})
	} else {
		if env := os.Getenv(EnvLibrary); env != "" {
			cands = append(cands, candidate{"$" + EnvLibrary, env})
		}
		cands = append(cands, defaultCandidates()...)
	}
	return findLibrary(cands, flagPath != "" || os.Getenv(EnvLibrary) != "")
}

type candidate struct{ from, path string }

// findLibrary returns the first candidate that is a regular file. When strict is true the first
// candidate was named explicitly by the user, and only it is considered: a wrong explicit path
// is an error, never silently replaced by another library.
func findLibrary(cands []candidate, strict bool) (string, error) {
	var tried []string
	for i, c := range cands {
		st, err := os.Stat(c.path)
		switch {
		case err == nil && st.Mode().IsRegular():
			return c.path, nil
		case err == nil:
			tried = append(tried, fmt.Sprintf("%s %s (not a regular file)", c.from, c.path))
		case errors.Is(err, os.ErrNotExist):
			tried = append(tried, fmt.Sprintf("%s %s (no such file)", c.from, c.path))
		default:
			tried = append(tried, fmt.Sprintf("%s %s (%v)", c.from, c.path, err))
		}
		if strict && i == 0 {
			break
		}
	}
	return "", fmt.Errorf("%w (ONNX Runtime %s, linux/%s); looked in:\n  %s\nrun 'make ort' to fetch it, or set %s",
		ErrLibraryNotFound, ORTVersion, goruntime.GOARCH, strings.Join(tried, "\n  "), EnvLibrary)
}

func defaultCandidates() []candidate {
	var cands []candidate
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		cands = append(cands,
			candidate{"executable folder", filepath.Join(dir, "libonnxruntime.so")},
			candidate{"executable folder", filepath.Join(dir, "lib", "libonnxruntime.so")})
	}
	if wd, err := os.Getwd(); err == nil {
		rel := CacheDir(goruntime.GOARCH)
		for dir := wd; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				cands = append(cands, candidate{"repository cache", filepath.Join(dir, rel, "libonnxruntime.so")})
				break
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	for _, dir := range []string{"/usr/local/lib", "/usr/lib", "/usr/lib/" + debianMultiarch()} {
		cands = append(cands, candidate{"system", filepath.Join(dir, "libonnxruntime.so")})
	}
	return cands
}

func debianMultiarch() string {
	if goruntime.GOARCH == "arm64" {
		return "aarch64-linux-gnu"
	}
	return "x86_64-linux-gnu"
}

var env struct {
	sync.Mutex
	path string
}

// Init loads the ONNX Runtime library at path and creates the process-wide environment. Calling
// it again with the same path does nothing; with another path it is an error, since a process
// holds one ONNX Runtime.
func Init(path string) error {
	env.Lock()
	defer env.Unlock()
	if env.path != "" {
		if env.path == path {
			return nil
		}
		return fmt.Errorf("runtime: ONNX Runtime already loaded from %s, cannot also load %s", env.path, path)
	}
	ort.SetSharedLibraryPath(path)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Errorf("runtime: load ONNX Runtime from %s (oodguard needs ONNX Runtime %s): %w", path, ORTVersion, err)
	}
	env.path = path
	return nil
}

// LibraryPath returns the path Init loaded, or "" before Init.
func LibraryPath() string {
	env.Lock()
	defer env.Unlock()
	return env.path
}

// Version returns the version string of the loaded ONNX Runtime library.
func Version() string { return ort.GetVersion() }

// Setup finds the library (see FindLibrary) and initialises it; it is what commands call.
func Setup(flagPath string) (string, error) {
	path, err := FindLibrary(flagPath)
	if err != nil {
		return "", err
	}
	return path, Init(path)
}
