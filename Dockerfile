# One image with every Urumi binary: urumi-api, urumi-worker and urumictl (the Helm chart
# helm/urumi runs it), plus a `sim` stage that adds the Kubernetes API simulator for
# docker-compose.yml. Not built on the development machines, which have no Docker engine.
#   docker build -t REGISTRY/urumi:0.1.0 .            # the platform image
#   docker build --target sim -t urumi-sim .          # the simulator (local use only)
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p urumi-api -p urumi-worker -p urumi-cli -p urumi-sim --bins

FROM debian:bookworm-slim AS base
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
CMD ["urumi-worker", "run"]
