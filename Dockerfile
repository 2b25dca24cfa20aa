# The worker image (used by docker-compose.yml). Not built on the development machines,
# which have no Docker engine.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p urumi-worker

FROM debian:bookworm-slim
RUN useradd --uid 10001 --no-create-home urumi
COPY --from=build /src/target/release/urumi-worker /usr/local/bin/urumi-worker
USER 10001
ENTRYPOINT ["/usr/local/bin/urumi-worker"]
CMD ["run"]
