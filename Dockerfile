# Build stage: the same toolchain the project tests with.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY commands ./commands
COPY config ./config
COPY benches ./benches
RUN cargo build --release --locked --bin gantry

# Runtime stage: a slim base, CA roots for Slack/GitHub/registries, a non-root user.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 gantry \
 && useradd --uid 10001 --gid gantry --no-create-home --shell /usr/sbin/nologin gantry \
 && mkdir -p /var/lib/gantry /etc/gantry \
 && chown gantry:gantry /var/lib/gantry
COPY --from=build /src/target/release/gantry /usr/local/bin/gantry
COPY config/gantry.toml /etc/gantry/gantry.toml
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/gantry"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--config", "/etc/gantry/gantry.toml", "--data", "/var/lib/gantry"]
