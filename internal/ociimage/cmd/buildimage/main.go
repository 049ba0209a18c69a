// Command buildimage builds the shardwatch container image without a
// Docker daemon (see package ociimage) into an OCI layout and a tarball.
//
//	go run ./internal/ociimage/cmd/buildimage [-out .cache/image] [-tag shardwatch:dev] [-arch amd64]
//
// SOURCE_DATE_EPOCH fixes the image timestamps (default: the Unix epoch),
// so rebuilding the same commit gives the same digest.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/shardwatch/shardwatch/internal/ociimage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "buildimage:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("buildimage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", ".", "module root (holds go.mod and deploy/image/rootfs)")
	out := fs.String("out", ".cache/image", "output directory: layout/ (OCI image layout) and shardwatch.tar")
	tag := fs.String("tag", "shardwatch:dev", "image reference recorded in the layout and the tarball")
	arch := fs.String("arch", runtime.GOARCH, "target architecture (amd64 or arm64)")
	ca := fs.String("ca", "/etc/ssl/certs/ca-certificates.crt", "CA bundle to install (Debian ca-certificates)")
	version := fs.String("version", "dev", "value of the org.opencontainers.image.version label")
	if err := fs.Parse(args); err != nil {
		return err
	}

	created := time.Unix(0, 0).UTC()
	if s := getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		created = time.Unix(sec, 0).UTC()
	}

	binDir := filepath.Join(*out, "bin-"+*arch)
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	consumer, err := ociimage.GoBuild(ctx, *root, "./cmd/consumer", *arch, mustAbs(filepath.Join(binDir, "consumer")))
	if err != nil {
		return err
	}
	producer, err := ociimage.GoBuild(ctx, *root, "./cmd/producer", *arch, mustAbs(filepath.Join(binDir, "producer")))
	if err != nil {
		return err
	}
	caData, err := os.ReadFile(*ca)
	if err != nil {
		return fmt.Errorf("CA bundle: %w (install Debian's ca-certificates or pass -ca)", err)
	}
	etc := filepath.Join(*root, "deploy", "image", "rootfs", "etc")
	passwd, err := os.ReadFile(filepath.Join(etc, "passwd"))
	if err != nil {
		return err
	}
	group, err := os.ReadFile(filepath.Join(etc, "group"))
	if err != nil {
		return err
	}

	spec := ociimage.ShardwatchSpec(ociimage.RootFS(consumer, producer, caData, passwd, group), *arch, created, *version)
	img, err := ociimage.Build(spec)
	if err != nil {
		return err
	}
	if err := ociimage.WriteLayout(filepath.Join(*out, "layout"), img, *tag); err != nil {
		return err
	}
	tarPath := filepath.Join(*out, "shardwatch.tar")
	if err := ociimage.WriteTarball(tarPath, img, *tag); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, "digest"), []byte(digest.String()+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s\n  layout:  %s\n  tarball: %s (docker load -i)\n", *tag, digest, filepath.Join(*out, "layout"), tarPath)
	return nil
}

func mustAbs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
