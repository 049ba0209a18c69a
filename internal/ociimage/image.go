package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// NonRoot is the image's user: distroless' "nonroot", the same numeric
// user the ECS task definition sets.
const NonRoot = 65532

// CABundlePath is where the CA bundle lives in the image: the path Go's
// crypto/x509 reads first on Linux (Debian layout).
const CABundlePath = "/etc/ssl/certs/ca-certificates.crt"

// File is one entry of the image's single layer.
type File struct {
	Path     string      // absolute path in the image
	Mode     fs.FileMode // permission bits (and fs.ModeSticky); fs.ModeDir for directories
	Data     []byte      // contents of a regular file
	UID, GID int
}

// Spec describes an image built from scratch.
type Spec struct {
	Files      []File
	User       string // "uid:gid"
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	Labels     map[string]string
	OS, Arch   string
	// Created is the timestamp of the config, history and every file.
	// Fixed (SOURCE_DATE_EPOCH, default the Unix epoch) so that the same
	// inputs give the same digest.
	Created time.Time
}

// ErrNotStatic is returned for a binary that needs a dynamic loader or
// shared libraries: it cannot run in an image without a libc.
var ErrNotStatic = errors.New("binary is not statically linked")

// CheckStatic verifies that data is an ELF executable with no program
// interpreter and no DT_NEEDED libraries (what CGO_ENABLED=0 produces).
func CheckStatic(data []byte) error {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("check static: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%w: has a program interpreter", ErrNotStatic)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("check static: %w", err)
	}
	if len(libs) > 0 {
		return fmt.Errorf("%w: needs %s", ErrNotStatic, strings.Join(libs, ", "))
	}
	return nil
}

// RootFS returns the files of the shardwatch image: the two static
// binaries, the CA bundle, passwd/group with the nonroot user, its home
// and a world-writable sticky /tmp (the mount point of the task's only
// writable volume; the root filesystem is read-only in ECS).
func RootFS(consumer, producer, caBundle, passwd, group []byte) []File {
	return []File{
		{Path: "/consumer", Mode: 0o755, Data: consumer},
		{Path: "/producer", Mode: 0o755, Data: producer},
		{Path: CABundlePath, Mode: 0o644, Data: caBundle},
		{Path: "/etc/passwd", Mode: 0o644, Data: passwd},
		{Path: "/etc/group", Mode: 0o644, Data: group},
		{Path: "/home/nonroot", Mode: fs.ModeDir | 0o700, UID: NonRoot, GID: NonRoot},
		{Path: "/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
	}
}

// LayerTar writes files as a deterministic tar stream: sorted paths,
// parent directories added (root-owned, 0755), fixed timestamps, no user
// or group names, PAX-free USTAR/GNU headers.
func LayerTar(files []File, mtime time.Time) ([]byte, error) {
	entries := map[string]File{}
	for _, f := range files {
		p := path.Clean(f.Path)
		if !path.IsAbs(p) || p == "/" {
			return nil, fmt.Errorf("layer: path %q must be absolute and not /", f.Path)
		}
		if _, dup := entries[p]; dup {
			return nil, fmt.Errorf("layer: %s appears twice", p)
		}
		f.Path = p
		entries[p] = f
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if _, ok := entries[d]; !ok {
				entries[d] = File{Path: d, Mode: fs.ModeDir | 0o755}
			}
		}
	}
	paths := make([]string, 0, len(entries))
	for p := range entries {
		paths = append(paths, p)
	}
	slices.Sort(paths)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		f := entries[p]
		hdr := &tar.Header{
			Name:    strings.TrimPrefix(p, "/"),
			Mode:    int64(f.Mode.Perm()),
			Uid:     f.UID,
			Gid:     f.GID,
			ModTime: mtime,
			Format:  tar.FormatGNU,
		}
		if f.Mode&fs.ModeSticky != 0 {
			hdr.Mode |= 0o1000
		}
		if f.Mode.IsDir() {
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		} else {
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(f.Data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", p, err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", p, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return buf.Bytes(), nil
}

// Build assembles a single-layer OCI image from scratch.
func Build(spec Spec) (v1.Image, error) {
	if spec.OS == "" || spec.Arch == "" {
		return nil, errors.New("build image: OS and Arch are required")
	}
	created := v1.Time{Time: spec.Created.UTC()}
	raw, err := LayerTar(spec.Files, spec.Created.UTC())
	if err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	layer, err := newGzipLayer(raw)
	if err != nil {
		return nil, fmt.Errorf("build image: layer: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: created, CreatedBy: "shardwatch internal/ociimage", Comment: "static binaries, CA bundle, nonroot user"},
	})
	if err != nil {
		return nil, fmt.Errorf("build image: append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("build image: config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = spec.OS, spec.Arch, created
	cf.Config = v1.Config{
		User:       spec.User,
		Entrypoint: spec.Entrypoint,
		Cmd:        spec.Cmd,
		Env:        spec.Env,
		WorkingDir: spec.WorkingDir,
		Labels:     spec.Labels,
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("build image: set config: %w", err)
	}
	return img, nil
}

// gzipLayer is an in-memory OCI gzip layer. Compressing here, with a
// zeroed gzip header and a fixed level, keeps the digest a function of the
// tar bytes alone (and the manifest free of empty annotation maps).
type gzipLayer struct {
	raw, gz        []byte
	digest, diffID v1.Hash
}

func newGzipLayer(raw []byte) (*gzipLayer, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	l := &gzipLayer{raw: raw, gz: buf.Bytes()}
	if l.digest, _, err = v1.SHA256(bytes.NewReader(l.gz)); err != nil {
		return nil, err
	}
	if l.diffID, _, err = v1.SHA256(bytes.NewReader(l.raw)); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *gzipLayer) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *gzipLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l *gzipLayer) Size() (int64, error)     { return int64(len(l.gz)), nil }
func (l *gzipLayer) MediaType() (types.MediaType, error) {
	return types.OCILayer, nil
}
func (l *gzipLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.gz)), nil
}
func (l *gzipLayer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.raw)), nil
}

// WriteLayout writes img as an OCI image layout in dir (replacing what
// was there), its index entry annotated with ref.
func WriteLayout(dir string, img v1.Image, ref string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("write layout: %w", err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("write layout: %w", err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref,
	})); err != nil {
		return fmt.Errorf("write layout: %w", err)
	}
	return nil
}

// WriteTarball writes img as a `docker load` / `podman load` tarball
// tagged ref.
func WriteTarball(file string, img v1.Image, ref string) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("write tarball: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return fmt.Errorf("write tarball: %w", err)
	}
	if err := tarball.WriteToFile(file, tag, img); err != nil {
		return fmt.Errorf("write tarball: %w", err)
	}
	return nil
}

// BuildFlags are the go build flags of the image's binaries (also used
// by deploy/Dockerfile): reproducible, stripped, no VCS stamp.
var BuildFlags = []string{"-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid="}

// GoBuild compiles a main package into a static, reproducible Linux
// binary: CGO_ENABLED=0, -trimpath, no VCS stamp, no build ID, stripped.
func GoBuild(ctx context.Context, moduleDir, pkg, goarch, out string) ([]byte, error) {
	args := append(append([]string{"build"}, BuildFlags...), "-o", out, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("go build %s: %w", pkg, err)
	}
	if err := CheckStatic(data); err != nil {
		return nil, fmt.Errorf("go build %s: %w", pkg, err)
	}
	return data, nil
}

// ShardwatchSpec is the image `make image` builds and deploy/Dockerfile
// mirrors: entrypoint `/consumer run`, user nonroot.
func ShardwatchSpec(files []File, arch string, created time.Time, version string) Spec {
	return Spec{
		Files:      files,
		User:       fmt.Sprintf("%d:%d", NonRoot, NonRoot),
		Entrypoint: []string{"/consumer", "run"},
		Env:        []string{"PATH=/", "SSL_CERT_FILE=" + CABundlePath},
		WorkingDir: "/",
		Labels: map[string]string{
			"org.opencontainers.image.title":   "shardwatch",
			"org.opencontainers.image.source":  "https://github.com/shardwatch/shardwatch",
			"org.opencontainers.image.version": version,
		},
		OS:      "linux",
		Arch:    arch,
		Created: created,
	}
}
