package ociimage

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = filepath.Dir(dir)
	}
}

// caBundle is the Debian bundle make image uses; tests that need real
// roots skip without it (the image itself does not care what is in it).
func caBundle(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Skipf("no CA bundle on this machine (apt-get install ca-certificates): %v", err)
	}
	return b
}

func etcFiles(t *testing.T) (passwd, group []byte) {
	t.Helper()
	etc := filepath.Join(repoRoot(t), "deploy", "image", "rootfs", "etc")
	passwd, err := os.ReadFile(filepath.Join(etc, "passwd"))
	if err != nil {
		t.Fatal(err)
	}
	group, err = os.ReadFile(filepath.Join(etc, "group"))
	if err != nil {
		t.Fatal(err)
	}
	return passwd, group
}

// fixtureImage returns the image around the small fixture binary, used
// as both /consumer and /producer. Images created at the Unix epoch are
// built once and shared: gzip at BestCompression under -race costs 8-10 s
// per build on 2 cores, and these tests only read the image.
func fixtureImage(t *testing.T, created time.Time) (v1.Image, []File) {
	t.Helper()
	files := fixtureFiles(t)
	fixture.Lock()
	defer fixture.Unlock()
	if created.Equal(time.Unix(0, 0)) && fixture.img != nil {
		return fixture.img, files
	}
	img, err := Build(ShardwatchSpec(files, runtime.GOARCH, created, "test"))
	if err != nil {
		t.Fatal(err)
	}
	if created.Equal(time.Unix(0, 0)) {
		fixture.img = img
	}
	return img, files
}

func fixtureFiles(t *testing.T) []File {
	t.Helper()
	passwd, group := etcFiles(t)
	return RootFS(fixtureBinary(t), fixtureBinary(t), caBundle(t), passwd, group)
}

// fixture caches the fixture binary: five tests build images around it,
// and one build (a static, trimmed build that shares no cache entries
// with the race-enabled test build) is enough.
var fixture struct {
	sync.Mutex
	img v1.Image // created at the Unix epoch
}

var fixtureBin struct {
	sync.Mutex
	bin []byte
}

func fixtureBinary(t *testing.T) []byte {
	t.Helper()
	fixtureBin.Lock()
	defer fixtureBin.Unlock()
	if fixtureBin.bin != nil {
		return fixtureBin.bin
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := GoBuild(ctx, repoRoot(t), "./internal/ociimage/testdata/fixture", runtime.GOARCH, filepath.Join(t.TempDir(), "fixture"))
	if err != nil {
		t.Fatal(err)
	}
	fixtureBin.bin = bin
	return bin
}

func digest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestImageConfigAndFiles(t *testing.T) {
	img, _ := fixtureImage(t, time.Unix(0, 0))
	if err := validate.Image(img); err != nil {
		t.Fatalf("go-containerregistry validate: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	type cfgShape struct {
		OS, Arch, User string
		Entrypoint     []string
		Cmd            []string
		Env            []string
		Created        time.Time
	}
	got := cfgShape{cf.OS, cf.Architecture, cf.Config.User, cf.Config.Entrypoint, cf.Config.Cmd, cf.Config.Env, cf.Created.UTC()}
	want := cfgShape{"linux", runtime.GOARCH, "65532:65532", []string{"/consumer", "run"}, nil,
		[]string{"PATH=/", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}, time.Unix(0, 0).UTC()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	mf, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if mf.MediaType != "application/vnd.oci.image.manifest.v1+json" || len(mf.Layers) != 1 ||
		mf.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
		t.Errorf("manifest: %s with %d layers (%v), want one OCI gzip layer", mf.MediaType, len(mf.Layers), mf.Layers)
	}

	// The whole filesystem, with owners and modes: nothing else, in
	// particular no shell.
	var listing []string
	tr := tar.NewReader(mutate.Extract(img))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		listing = append(listing, fmt.Sprintf("%s %o %d:%d %s", string(h.Typeflag), h.Mode, h.Uid, h.Gid, h.Name))
	}
	wantListing := []string{
		"0 755 0:0 consumer",
		"5 755 0:0 etc",
		"0 644 0:0 etc/group",
		"0 644 0:0 etc/passwd",
		"5 755 0:0 etc/ssl",
		"5 755 0:0 etc/ssl/certs",
		"0 644 0:0 etc/ssl/certs/ca-certificates.crt",
		"5 755 0:0 home",
		"5 700 65532:65532 home/nonroot",
		"0 755 0:0 producer",
		"5 1777 0:0 tmp",
	}
	if diff := cmp.Diff(wantListing, listing); diff != "" {
		t.Errorf("image filesystem (-want +got):\n%s", diff)
	}
}

// Same inputs, same digest; a different timestamp, a different digest.
func TestImageIsReproducible(t *testing.T) {
	a, files := fixtureImage(t, time.Unix(0, 0))
	// b and c are fresh builds (never the shared image), in parallel.
	var b, c v1.Image
	var errB, errC error
	var wg sync.WaitGroup
	wg.Go(func() { b, errB = Build(ShardwatchSpec(files, runtime.GOARCH, time.Unix(0, 0), "test")) })
	wg.Go(func() { c, errC = Build(ShardwatchSpec(files, runtime.GOARCH, time.Unix(1700000000, 0), "test")) })
	wg.Wait()
	if err := errors.Join(errB, errC); err != nil {
		t.Fatal(err)
	}
	if da, db := digest(t, a), digest(t, b); da != db {
		t.Errorf("two builds of the same inputs: %s != %s", da, db)
	}
	if da, dc := digest(t, a), digest(t, c); da == dc {
		t.Errorf("SOURCE_DATE_EPOCH does not reach the digest (%s)", da)
	}
}

// The layout and the tarball read back as the same image.
func TestWriteLayoutAndTarball(t *testing.T) {
	img, _ := fixtureImage(t, time.Unix(0, 0))
	want := digest(t, img)
	dir := t.TempDir()

	if err := WriteLayout(filepath.Join(dir, "layout"), img, "shardwatch:test"); err != nil {
		t.Fatal(err)
	}
	// Writing twice replaces, it does not append a second manifest.
	if err := WriteLayout(filepath.Join(dir, "layout"), img, "shardwatch:test"); err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != want ||
		im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "shardwatch:test" {
		t.Fatalf("layout index %+v, want one manifest %s named shardwatch:test", im.Manifests, want)
	}
	fromLayout, err := idx.Image(want)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(fromLayout); err != nil {
		t.Errorf("layout image: %v", err)
	}

	tarPath := filepath.Join(dir, "shardwatch.tar")
	if err := WriteTarball(tarPath, img, "shardwatch:test"); err != nil {
		t.Fatal(err)
	}
	// A docker-archive keeps the config and layers but not the OCI
	// manifest (the reader synthesises a Docker one), so compare those.
	fromTar, err := tarball.ImageFromPath(tarPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range []v1.Image{img, fromTar} {
		if err := validate.Image(im, validate.Fast); err != nil {
			t.Errorf("image: %v", err)
		}
	}
	wantCfg, _ := img.ConfigName()
	gotCfg, err := fromTar.ConfigName()
	if err != nil || gotCfg != wantCfg {
		t.Errorf("tarball config %s (%v), want %s", gotCfg, err, wantCfg)
	}
	wantLayers, _ := img.Layers()
	gotLayers, err := fromTar.Layers()
	if err != nil || len(gotLayers) != len(wantLayers) {
		t.Fatalf("tarball has %d layers (%v), want %d", len(gotLayers), err, len(wantLayers))
	}
	for i := range wantLayers {
		w, _ := wantLayers[i].DiffID()
		g, _ := gotLayers[i].DiffID()
		if w != g {
			t.Errorf("tarball layer %d diff ID %s, want %s", i, g, w)
		}
	}
}

func TestCheckStaticRejectsDynamicBinaries(t *testing.T) {
	// The test binary itself is usually dynamically linked (cgo on); any
	// binary with an interpreter will do. Skip if it happens to be static.
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Skip(err)
	}
	if err := CheckStatic(self); err == nil {
		t.Skip("the test binary is static on this machine")
	} else if !errors.Is(err, ErrNotStatic) {
		t.Fatalf("got %v, want ErrNotStatic", err)
	}
	if err := CheckStatic([]byte("#!/bin/sh\necho hi\n")); err == nil {
		t.Error("a shell script passed as a static binary")
	}
}

// unpack writes the image's flattened filesystem into dir with the modes
// and owners of the layer (owners only when running as root).
func unpack(t *testing.T, img v1.Image, dir string) {
	t.Helper()
	tr := tar.NewReader(mutate.Extract(img))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			t.Fatalf("layer entry %q escapes the root", h.Name)
		}
		mode := h.FileInfo().Mode()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("unexpected entry type %q for %s", h.Typeflag, h.Name)
		}
		if err := os.Chmod(p, mode.Perm()|mode&os.ModeSticky); err != nil {
			t.Fatal(err)
		}
		if os.Geteuid() == 0 {
			if err := os.Lchown(p, h.Uid, h.Gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// runInImage runs argv inside the unpacked image root as the image's
// user: chroot plus setuid/setgid, the way a runtime would (no namespaces
// needed for this). Requires root.
func runInImage(t *testing.T, root string, env []string, argv ...string) (stdout []byte, err error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running a binary as uid 65532 inside the unpacked image needs root (chroot, setuid)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Path = argv[0] // resolved inside the chroot, not on the host
	cmd.Dir = "/"
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     root,
		Credential: &syscall.Credential{Uid: NonRoot, Gid: NonRoot},
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%w: %s", err, stderr.Bytes())
	}
	return out, nil
}

func imageEnv(t *testing.T, img v1.Image, extra ...string) []string {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return append(append([]string(nil), cf.Config.Env...), extra...)
}

// The entrypoint runs from the unpacked filesystem as 65532 and finds
// what it needs there: CA roots, a writable /tmp, its passwd entry.
func TestEntrypointRunsAsNonRootFromUnpackedImage(t *testing.T) {
	img, _ := fixtureImage(t, time.Unix(0, 0))
	root := t.TempDir()
	unpack(t, img, root)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	out, err := runInImage(t, root, imageEnv(t, img), cf.Config.Entrypoint...)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		UID, GID    int
		Args        []string
		Roots       int
		RootsError  string `json:"roots_error"`
		TmpWritable bool   `json:"tmp_writable"`
		User, Home  string
		HasShell    bool `json:"has_shell"`
		EnvSSL      bool `json:"env_ssl"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("fixture output %q: %v", out, err)
	}
	if got.Roots < 50 {
		t.Errorf("loaded %d CA roots (%s), want the Debian bundle", got.Roots, got.RootsError)
	}
	got.Roots, got.RootsError = 0, ""
	want := struct {
		UID, GID    int
		Args        []string
		Roots       int
		RootsError  string `json:"roots_error"`
		TmpWritable bool   `json:"tmp_writable"`
		User, Home  string
		HasShell    bool `json:"has_shell"`
		EnvSSL      bool `json:"env_ssl"`
	}{UID: 65532, GID: 65532, Args: []string{"/consumer", "run"}, TmpWritable: true, User: "nonroot", Home: "/home/nonroot", EnvSSL: true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entrypoint inside the image (-want +got):\n%s", diff)
	}
}

// The real consumer binary, built the way `make image` builds it, runs
// in the image as 65532: its ECS health check command succeeds against a
// healthy worker and fails against an unhealthy one.
//
// It builds cmd/consumer with the image's flags (static, -trimpath), which
// share no build cache with the race-enabled test build: about 3.5 minutes
// of a 2-core CI run. What it adds over the fixture tests (entrypoint,
// user, CA roots, /tmp inside the unpacked image) and cmd/consumer's own
// healthcheck tests is the real binary in the real image, so it runs only
// with SHARDWATCH_IMAGE_FULL=1 (`make image-test`).
func TestRealConsumerHealthcheckInImage(t *testing.T) {
	if os.Getenv("SHARDWATCH_IMAGE_FULL") != "1" {
		t.Skip("builds cmd/consumer for the image (minutes on a cold cache); set SHARDWATCH_IMAGE_FULL=1 or run make image-test")
	}
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "cmd", "consumer")); err != nil {
		t.Skip("cmd/consumer does not exist yet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	consumer, err := GoBuild(ctx, root, "./cmd/consumer", runtime.GOARCH, filepath.Join(t.TempDir(), "consumer"))
	if err != nil {
		t.Fatal(err)
	}
	passwd, group := etcFiles(t)
	img, err := Build(ShardwatchSpec(RootFS(consumer, consumer, caBundle(t), passwd, group), runtime.GOARCH, time.Unix(0, 0), "test"))
	if err != nil {
		t.Fatal(err)
	}
	fsRoot := t.TempDir()
	unpack(t, img, fsRoot)

	var status atomic.Int32 // written by the test, read by the server goroutine
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	env := imageEnv(t, img, "SHARDWATCH_OPS_ADDR="+strings.TrimPrefix(srv.URL, "http://"))

	// The exact command of the task definition's health check.
	if _, err := runInImage(t, fsRoot, env, "/consumer", "healthcheck"); err != nil {
		t.Errorf("healthcheck against a healthy worker: %v", err)
	}
	status.Store(http.StatusServiceUnavailable)
	if _, err := runInImage(t, fsRoot, env, "/consumer", "healthcheck"); err == nil {
		t.Error("healthcheck against an unhealthy worker succeeded")
	}
}
