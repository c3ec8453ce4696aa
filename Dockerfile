# Airlock's container image: the `airlock` gateway binary and `airlock-sim`
# (the simulated Azure, for the compose quick start), on a distroless base:
# no shell, no package manager, running as an unprivileged user.
#
#   docker build -t airlock .
#   docker run --rm airlock --help
#
# Build stage: the workspace in release mode. SQLite is bundled and TLS is
# rustls on aws-lc-rs (built from source here: it needs cmake and a C
# compiler), so the final image needs only glibc.
FROM rust:1.90-slim-bookworm AS build
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p airlock-cli -p airlock-sim \
    && mkdir -p /out/shared \
    && cp target/release/airlock target/release/airlock-sim /out/

# Final stage: glibc and CA certificates, nothing else; user `nonroot` (65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/airlock /out/airlock-sim /usr/local/bin/
# The compose topology's shared volume: a new named volume takes this
# directory's owner, so the unprivileged simulator can write into it.
COPY --from=build --chown=65532:65532 /out/shared /shared
WORKDIR /var/lib/airlock
USER nonroot
EXPOSE 8443 8444
ENTRYPOINT ["/usr/local/bin/airlock"]
CMD ["serve", "--config", "/etc/airlock/airlock.toml"]
