# Flint's container image: flint-master, flint-worker, flint-submit, the examples and the
# Kubernetes start scripts (/start-master, /start-worker) on an empty base, run as the
# non-root user spark (185). Build and push it where your cluster can pull it from:
#
#   docker build -t registry.example.com/flint:0.1.0 .
#   docker push registry.example.com/flint:0.1.0
#
# (then point k8s-manifests/kustomization.yaml's `images:` at it). With no registry to
# pull the Rust image from, tests/k8s/build-image.sh builds the same image from binaries
# built on the host, with k8s-manifests/image/Dockerfile.scratch.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p flint-master -p flint-worker -p flint-client --bins \
    && sh k8s-manifests/image/assemble-rootfs.sh target/release /rootfs

# Keep this stage's instructions identical to k8s-manifests/image/Dockerfile.scratch
# (tests/k8s/check_manifests.py compares them).
FROM scratch AS runtime
COPY --from=build /rootfs/ /
LABEL org.opencontainers.image.title="flint" \
      org.opencontainers.image.description="Flint: Apache Spark's standalone cluster manager in Rust" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/flint/bin:/usr/bin:/bin
USER 185:185
WORKDIR /opt/flint/work
CMD ["/start-master"]
