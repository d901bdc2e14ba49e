# syntax=docker/dockerfile:1
# One image for every service of the platform (docker-compose.yml, infra/k8s). The build step is
# the one `just up` runs, `cargo build --workspace --bins`, with the release profile and the
# committed Cargo.lock; a container picks its service by command (`idp`, `verify-rar`, ...).
#
#   docker build -t authority:dev .
#   docker build --target dev-keys -t authority-dev-keys:dev .   # the compose file's key maker

ARG RUST_VERSION=1.95
ARG DEBIAN=bookworm

# ---- build: the workspace, as `just up` builds it ------------------------------------------
FROM rust:${RUST_VERSION}-${DEBIAN} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --workspace --bins --locked --release \
 && mkdir -p /out \
 && for bin in idp ssf verify-rar graph banking iam entra concierge web; do \
      cp "target/release/$bin" /out/; \
    done

# ---- runtime: slim Debian, the binaries, infra/ (policies, registry, clients, issuer roles) --
# and web/narration/ (the web UI's scenarios, WEB_NARRATION_DIR), the files an operator edits.
FROM debian:${DEBIAN}-slim AS runtime
# ca-certificates: an LLM endpoint over https; curl: the health checks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 authority \
 && useradd --system --uid 10001 --gid authority --home-dir /app --shell /usr/sbin/nologin authority \
 && mkdir -p /app /data /keys \
 && chown authority:authority /data /keys
COPY --from=build /out/ /usr/local/bin/
COPY infra/ /app/infra/
COPY web/narration/ /app/web/narration/
WORKDIR /app
USER 10001:10001
ENV RUST_LOG=info LOG_FORMAT=json VR_LOG_JSON=1
# Every service binds 127.0.0.1 by default; the compose file and the manifests set
# <SERVICE>_BIND=0.0.0.0:<port>. The command names the service.
CMD ["idp"]

# ---- dev-keys: makes dev keys into /keys once (docker-compose.yml's `keys` job) --------------
FROM runtime AS dev-keys
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends openssl \
 && rm -rf /var/lib/apt/lists/*
COPY infra/k8s/dev-keys.sh /usr/local/bin/dev-keys.sh
USER 10001:10001
CMD ["dev-keys.sh", "dir", "/keys"]

# The default target is the service image.
FROM runtime
