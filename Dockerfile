# syntax=docker/dockerfile:1
# kafka-webhook container image (see docs/local-kafka.md; not built in CI or on the dev machine).
#
# Builder and runtime are both Debian bookworm: rust:1-slim-bookworm is the rust:1-slim image
# pinned to the same Debian release as the runtime, so the binary never needs a newer glibc
# than debian:bookworm-slim has.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and target dir between builds; the binary is copied out
# in the same step because the cache mount is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin kafka-webhook \
 && install -D -m 0755 target/release/kafka-webhook /out/kafka-webhook

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin kafka-webhook
COPY --from=build /out/kafka-webhook /usr/local/bin/kafka-webhook
USER kafka-webhook
EXPOSE 8080
ENV KAFKA_WEBHOOK_LISTEN=0.0.0.0:8080
ENTRYPOINT ["/usr/local/bin/kafka-webhook"]
