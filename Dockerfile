# The servers and the load generator, built from this workspace.
#   docker build --target runtime -t session-vs-token .     (docker compose up --build does this for you)
# One image holds all three programs; each compose service picks one with `command`.
# The last stage, `lesson`, adds Chromium and nginx for the browser experiment of
# `docker compose run --rm compare` (README, "Docker", gives its size).

FROM rust:1-slim-bookworm AS build
# goose's HTTP client links OpenSSL.
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p session-server -p token-server -p loadtest \
 && mkdir /out \
 && cp target/release/session-server target/release/token-server target/release/loadtest /out/
# The release profile keeps line tables for profiling; the image does not need them
# (about 250 MB of binaries become 32 MB).
RUN strip /out/*

FROM debian:bookworm-slim AS runtime
# curl is for the compose health checks; libssl3 for the load generator.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libssl3 \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --create-home --home-dir /work app
COPY --from=build /out/ /usr/local/bin/
USER app
WORKDIR /work
ENV LISTEN_ADDR=0.0.0.0:8080
EXPOSE 8080
CMD ["session-server"]

# The whole lesson's load tester (`docker compose run --rm compare`): the runtime image plus
# Chromium and nginx, so that the browser experiment runs from inside the stack (a headless
# browser behind a TLS nginx, beside one replica of each server). Only the compare service
# uses it; the replicas run the smaller runtime image.
FROM runtime AS lesson
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium nginx \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
USER app
