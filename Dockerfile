# otel-sidecar: multi-stage build, release binary on a distroless non-root runtime.
#
#   docker build -t otel-sidecar .
#   docker run --rm -p 8080:8080 -p 9090:9090 \
#     -v $PWD/sidecar.toml:/etc/otel-sidecar/sidecar.toml:ro otel-sidecar
#
# The config is read from /etc/otel-sidecar/sidecar.toml (SIDECAR_CONFIG).
# In a container the admin listener must not stay on loopback for probes from
# the kubelet or a scrape from Prometheus: set [admin] address = "0.0.0.0:9090".

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY examples ./examples
RUN cargo build --locked --release --bin otel-sidecar \
 && cp target/release/otel-sidecar /otel-sidecar

# distroless/cc has glibc and libgcc, nothing else: no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /otel-sidecar /usr/local/bin/otel-sidecar
COPY sidecar.toml /etc/otel-sidecar/sidecar.toml
ENV SIDECAR_CONFIG=/etc/otel-sidecar/sidecar.toml
USER nonroot:nonroot
EXPOSE 8080 9090
# No shell or curl in the image: the binary probes its own admin endpoint.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/otel-sidecar", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/otel-sidecar"]
CMD ["run"]
