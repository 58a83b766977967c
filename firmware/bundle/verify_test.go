package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// sentinels lists every error a refused bundle may wrap; each case must match exactly one.
var sentinels = []error{
	ErrBadSignature, ErrUnknownKey, ErrHashMismatch, ErrSizeMismatch, ErrPathEscape,
	ErrEntryType, ErrUnexpectedEntry, ErrDuplicateEntry, ErrMissingFile, ErrTruncated,
	ErrTooLarge, ErrMalformedArchive, ErrMalformedManifest, ErrUnsupportedFormat,
	ErrWrongDevice, ErrDowngrade, ErrReinstall, ErrIncompatible,
}

func TestVerifyExtracts(t *testing.T) {
	for _, gz := range []bool{false, true} {
		in := testInput(t)
		in.Gzip = gz
		path := filepath.Join(t.TempDir(), "b.tar")
		built, err := Build(path, in)
		if err != nil {
			t.Fatal(err)
		}
		if raw := mustRead(t, path); (raw[0] == 0x1f && raw[1] == 0x8b) != gz {
			t.Fatalf("gzip=%v: archive starts with % x", gz, raw[:2])
		}
		staging := filepath.Join(t.TempDir(), "slots", "next")
		b, err := Open(path, NewKeyring(testPub(2), testPub(1)), Options{
			DeviceClass: "test-board", Installed: MustParseVersion("1.1.9"), StagingDir: staging,
			Daemon: MustParseVersion("0.1.0"), ORT: MustParseVersion("1.24.1"),
		})
		if err != nil {
			t.Fatalf("gzip=%v: %v", gz, err)
		}
		if b.Dir != staging || b.KeyID != KeyID(testPub(1)) || b.Manifest.Version != built.Version ||
			b.Manifest.Files[ModelName] != built.Files[ModelName] || len(b.Manifest.Canaries) != 2 {
			t.Errorf("bundle = %+v, manifest %+v", b, b.Manifest)
		}
		names, _ := filepath.Glob(filepath.Join(staging, "*"))
		for i := range names {
			names[i] = filepath.Base(names[i])
		}
		want := []string{CalibrationName, "canary-ood.f32", ManifestName, SignatureName, ModelName}
		if !slices.Equal(names, want) {
			t.Errorf("staged %v, want %v", names, want)
		}
		if !bytes.Equal(mustRead(t, filepath.Join(staging, ModelName)), mustRead(t, in.Model)) {
			t.Error("staged model differs from the source")
		}
		if _, err := os.Stat(staging + UnverifiedSuffix); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there: %v", UnverifiedSuffix, err)
		}
		// The staged manifest is the exact signed one.
		sig, err := ParseSignature(mustRead(t, filepath.Join(staging, SignatureName)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NewKeyring(testPub(1)).Verify(mustRead(t, filepath.Join(staging, ManifestName)), sig); err != nil {
			t.Error(err)
		}
		for i, want := range []float32{0, 1.75} {
			x, err := b.CanaryInput(i)
			if err != nil || len(x) != 16 || x[7] != want {
				t.Errorf("canary %d = %v, %v", i, x, err)
			}
		}
		// A second install into the same (now existing) dir is refused.
		if _, err := Open(path, NewKeyring(testPub(1)), Options{StagingDir: staging}); !errors.Is(err, fs.ErrExist) {
			t.Errorf("existing staging dir: %v", err)
		}
	}
}

func TestVerifyWithoutStaging(t *testing.T) {
	path := buildTest(t, nil)
	b, err := Open(path, NewKeyring(testPub(1)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Dir != "" {
		t.Errorf("Dir = %q", b.Dir)
	}
	if _, err := b.CanaryInput(1); err == nil {
		t.Error("canary file of an unextracted bundle: no error")
	}
	if _, err := Open(path, nil, Options{}); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("nil keyring: %v", err)
	}
}

// refusal is one way to spoil a valid bundle.
type refusal struct {
	name string
	want error
	// edit turns the valid archive's entries into the bad one; nil keeps them.
	edit func(t testing.TB, es []entry) []entry
	// raw edits the archive bytes after edit; nil keeps them.
	raw  func(b []byte) []byte
	opts func(o *Options)
}

// flip changes one byte in the middle of data.
func flip(data []byte) []byte {
	data = bytes.Clone(data)
	data[len(data)/2] ^= 0x40
	return data
}

var refusals = []refusal{
	{name: "tampered model", want: ErrHashMismatch, edit: func(t testing.TB, es []entry) []entry {
		i := find(t, es, ModelName)
		es[i].data = flip(es[i].data)
		return es
	}},
	{name: "tampered canary file", want: ErrHashMismatch, edit: func(t testing.TB, es []entry) []entry {
		i := find(t, es, "canary-ood.f32")
		es[i].data = flip(es[i].data)
		return es
	}},
	{name: "longer model", want: ErrSizeMismatch, edit: func(t testing.TB, es []entry) []entry {
		i := find(t, es, ModelName)
		es[i].data = append(es[i].data, 0)
		return es
	}},
	{name: "tampered manifest", want: ErrBadSignature, edit: func(t testing.TB, es []entry) []entry {
		i := find(t, es, ManifestName)
		es[i].data = bytes.Replace(es[i].data, []byte("-3.25"), []byte("-9.25"), 1)
		return es
	}},
	{name: "signed by a wrong key under a trusted key id", want: ErrBadSignature, edit: func(t testing.TB, es []entry) []entry {
		es = resign(t, es, testKey(3), func(b []byte) []byte { return b })
		i := find(t, es, SignatureName)
		es[i].data = bytes.Replace(es[i].data, []byte(KeyID(testPub(3))), []byte(KeyID(testPub(1))), 1)
		return es
	}},
	{name: "malformed signature", want: ErrBadSignature, edit: func(t testing.TB, es []entry) []entry {
		es[find(t, es, SignatureName)].data = []byte(`{"key_id":"x","alg":"rsa","sig":""}`)
		return es
	}},
	{name: "unknown key id", want: ErrUnknownKey, edit: func(t testing.TB, es []entry) []entry {
		return resign(t, es, testKey(3), func(b []byte) []byte { return b })
	}},
	{name: "validly signed malformed manifest", want: ErrMalformedManifest, edit: func(t testing.TB, es []entry) []entry {
		return resign(t, es, testKey(1), func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"threshold"`), []byte(`"treshold"`), 1)
		})
	}},
	{name: "validly signed future format", want: ErrUnsupportedFormat, edit: func(t testing.TB, es []entry) []entry {
		return resign(t, es, testKey(1), func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"format_version": 1`), []byte(`"format_version": 2`), 1)
		})
	}},
	{name: "truncated in the model", want: ErrTruncated, raw: func(b []byte) []byte { return b[:len(b)*3/4] }},
	{name: "truncated in a header", want: ErrTruncated, raw: func(b []byte) []byte { return b[:512*3+100] }},
	{name: "path traversal", want: ErrPathEscape, edit: func(t testing.TB, es []entry) []entry {
		return slices.Insert(es, 2, regular("../x", []byte("evil")))
	}},
	{name: "path traversal first", want: ErrPathEscape, edit: func(t testing.TB, es []entry) []entry {
		return slices.Insert(es, 0, regular("a/../../x", []byte("evil")))
	}},
	{name: "absolute path", want: ErrPathEscape, edit: func(t testing.TB, es []entry) []entry {
		return slices.Insert(es, 2, regular("/tmp/x", []byte("evil")))
	}},
	{name: "symlink", want: ErrEntryType, edit: func(t testing.TB, es []entry) []entry {
		i := find(t, es, ModelName)
		es[i] = entry{tar.Header{Typeflag: tar.TypeSymlink, Name: ModelName, Linkname: "/etc/passwd"}, nil}
		return es
	}},
	{name: "hard link", want: ErrEntryType, edit: func(t testing.TB, es []entry) []entry {
		return slices.Insert(es, 2, entry{tar.Header{Typeflag: tar.TypeLink, Name: ModelName, Linkname: ManifestName}, nil})
	}},
	{name: "directory", want: ErrEntryType, edit: func(t testing.TB, es []entry) []entry {
		return slices.Insert(es, 2, entry{tar.Header{Typeflag: tar.TypeDir, Name: "canary-x.f32/", Mode: 0o755}, nil})
	}},
	{name: "device", want: ErrEntryType, edit: func(t testing.TB, es []entry) []entry {
		return slices.Insert(es, 2, entry{tar.Header{Typeflag: tar.TypeChar, Name: ModelName, Devmajor: 1, Devminor: 3}, nil})
	}},
	{name: "duplicated model", want: ErrDuplicateEntry, edit: func(t testing.TB, es []entry) []entry {
		return append(es, es[find(t, es, ModelName)])
	}},
	{name: "second manifest", want: ErrDuplicateEntry, edit: func(t testing.TB, es []entry) []entry {
		return append(es, regular(ManifestName, []byte("{}")))
	}},
	{name: "unlisted entry", want: ErrUnexpectedEntry, edit: func(t testing.TB, es []entry) []entry {
		return append(es, regular("canary-extra.f32", make([]byte, 64)))
	}},
	{name: "manifest not first", want: ErrUnexpectedEntry, edit: func(t testing.TB, es []entry) []entry {
		es[0], es[2] = es[2], es[0]
		return es
	}},
	{name: "missing calibration", want: ErrMissingFile, edit: func(t testing.TB, es []entry) []entry {
		return slices.Delete(es, find(t, es, CalibrationName), find(t, es, CalibrationName)+1)
	}},
	{name: "missing signature", want: ErrMissingFile, edit: func(t testing.TB, es []entry) []entry { return es[:1] }},
	{name: "model over the size cap", want: ErrTooLarge, opts: func(o *Options) { o.Limits.File = 1000 }},
	{name: "archive over the size cap", want: ErrTooLarge, opts: func(o *Options) { o.Limits.Total = 3000 }},
	{name: "not an archive", want: ErrMalformedArchive, raw: func(b []byte) []byte { return bytes.Repeat([]byte("x"), 1024) }},
	{name: "downgrade", want: ErrDowngrade, opts: func(o *Options) { o.Installed = MustParseVersion("1.10.0") }},
	{name: "reinstall", want: ErrReinstall, opts: func(o *Options) { o.Installed = MustParseVersion("1.2.0") }},
	{name: "newer prerelease installed", want: ErrDowngrade, opts: func(o *Options) {
		o.Installed = MustParseVersion("1.2.1-rc.1")
	}},
	{name: "other device class", want: ErrWrongDevice, opts: func(o *Options) { o.DeviceClass = "other-board" }},
	{name: "daemon too old", want: ErrIncompatible, opts: func(o *Options) { o.Daemon = MustParseVersion("0.0.9") }},
}

func TestVerifyRefuses(t *testing.T) {
	valid := mustRead(t, buildTest(t, nil))
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			data := valid
			if c.edit != nil {
				data = writeEntries(t, c.edit(t, readEntries(t, valid)))
			}
			if c.raw != nil {
				data = c.raw(bytes.Clone(data))
			}
			staging := filepath.Join(t.TempDir(), "next")
			opts := Options{DeviceClass: "test-board", Installed: MustParseVersion("1.1.0"), StagingDir: staging}
			if c.opts != nil {
				c.opts(&opts)
			}
			_, err := Verify(bytes.NewReader(data), NewKeyring(testPub(1), testPub(2)), opts)
			checkRefused(t, err, c.want, staging)
		})
	}
}

// checkRefused checks that err wraps want and no other sentinel, and that nothing was left
// in or next to the staging dir.
func checkRefused(t *testing.T, err, want error, staging string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
	for _, s := range sentinels {
		if s != want && errors.Is(err, s) {
			t.Errorf("err = %v also matches %v", err, s)
		}
	}
	for _, p := range []string{staging, staging + UnverifiedSuffix} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left behind (%v)", p, err)
		}
	}
	t.Log(err)
}

func TestVerifyAllowsWithFlags(t *testing.T) {
	path := buildTest(t, nil)
	kr := NewKeyring(testPub(1))
	for _, o := range []Options{
		{Installed: MustParseVersion("2.0.0"), AllowDowngrade: true},
		{Installed: MustParseVersion("1.2.0"), AllowReinstall: true},
		{Installed: MustParseVersion("1.2.0-rc.2")},
		{Installed: MustParseVersion("1.1.99")},
	} {
		o.StagingDir = filepath.Join(t.TempDir(), "next")
		if _, err := Open(path, kr, o); err != nil {
			t.Errorf("installed %s: %v", o.Installed, err)
		}
	}
}

func TestVerifyTruncatedGzip(t *testing.T) {
	path := buildTest(t, func(in *BuildInput) { in.Gzip = true })
	data := mustRead(t, path)
	staging := filepath.Join(t.TempDir(), "next")
	for _, n := range []int{len(data) / 2, len(data) - 9} {
		_, err := Verify(bytes.NewReader(data[:n]), NewKeyring(testPub(1)), Options{StagingDir: staging})
		checkRefused(t, err, ErrTruncated, staging)
	}
	// A gzip bomb: 64 KiB that inflate to 64 MiB, past a 1 MiB cap.
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(make([]byte, 64<<20))
	zw.Close()
	_, err := Verify(&buf, NewKeyring(testPub(1)), Options{StagingDir: staging, Limits: Limits{Total: 1 << 20}})
	checkRefused(t, err, ErrTooLarge, staging)
}

func TestOpenLeavesNoPartialStaging(t *testing.T) {
	// A leftover from an interrupted run is replaced, and removed when the bundle is bad.
	valid := mustRead(t, buildTest(t, nil))
	es := readEntries(t, valid)
	es[find(t, es, CalibrationName)].data = flip(es[find(t, es, CalibrationName)].data)
	staging := filepath.Join(t.TempDir(), "next")
	if err := os.MkdirAll(staging+UnverifiedSuffix, 0o755); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, staging+UnverifiedSuffix, "junk", nil)
	_, err := Verify(bytes.NewReader(writeEntries(t, es)), NewKeyring(testPub(1)), Options{StagingDir: staging})
	checkRefused(t, err, ErrHashMismatch, staging)
}
