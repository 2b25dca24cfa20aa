# One image with every Urumi binary: urumi-api, urumi-worker and urumictl, and the built
# dashboard in /usr/share/urumi/dashboard (the Helm chart
# helm/urumi runs it), plus a `sim` stage that adds the Kubernetes API simulator for
# docker-compose.yml. Not built on the development machines, which have no Docker engine.
#   docker build -t REGISTRY/urumi:0.1.0 .            # the platform image
#   docker build --target sim -t urumi-sim .          # the simulator (local use only)
# The dashboard (frontend/), built against the committed spec; the API serves it when
# `api.dashboard_dir` names it (the chart and docker-compose.yml set it).
FROM node:20-bookworm-slim AS dashboard
WORKDIR /src
COPY api/openapi.json api/openapi.json
COPY frontend frontend
WORKDIR /src/frontend
RUN npm ci --no-audit --no-fund && npm run build

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# No database here: the query macros compile against the committed `.sqlx/` cache (also set
# in `.cargo/config.toml`, which the context carries).
ENV SQLX_OFFLINE=true
RUN cargo build --release --locked -p urumi-api -p urumi-worker -p urumi-cli -p urumi-sim --bins

FROM debian:bookworm-slim AS base
# ca-certificates is left unpinned on purpose: it is the CA roots (Postgres TLS, the
# Kubernetes API), which must follow Debian's updates; a pinned version disappears from the
# archive when bookworm's moves on and breaks the build.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --no-create-home urumi
# Numeric, so Kubernetes can verify runAsNonRoot.
USER 10001

FROM base AS sim
COPY --from=build /src/target/release/urumi-sim /usr/local/bin/urumi-sim
CMD ["urumi-sim"]

# The default target: the platform image.
FROM base
COPY --from=build /src/target/release/urumi-api /src/target/release/urumi-worker \
    /src/target/release/urumictl /usr/local/bin/
COPY --from=dashboard /src/frontend/dist /usr/share/urumi/dashboard
CMD ["urumi-worker", "run"]
