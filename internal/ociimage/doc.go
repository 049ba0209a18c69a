// Package ociimage builds the shardwatch container image without a
// container daemon or registry: static Go binaries, the CA bundle and a
// passwd entry for the nonroot user (65532) in one deterministic layer,
// assembled with go-containerregistry and written as an OCI image layout
// and a `docker load` tarball. The same inputs give the same digest.
//
// `make image` runs ./internal/ociimage/cmd/buildimage; deploy/Dockerfile
// builds the equivalent image for users with Docker.
package ociimage
