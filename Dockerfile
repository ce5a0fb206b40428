# syntax=docker/dockerfile:1
# The sfn-operator image: one entry point, `sfn-operator`, serves the operator and the pollers it
# starts (`args: ["operator"]`, `args: ["poller"]`). Build: `docker build -t sfn-operator .`
#
# test/unit/dockerfile.test.ts and test/integration/image.test.ts hold this file to its promises:
# the final stage copies exactly what `npm pack` publishes, the Node version equals the project's
# `node` devDependency, the user is numeric and not root, and the files it copies start the CLI
# with no node_modules at all. `npm run lint:dockerfile` runs hadolint on it.

# The Node.js of the image, by exact version: the `node` devDependency in package-lock.json that
# development, the tests and CI run (a unit test fails when the two differ).
ARG NODE_VERSION=24.21.0

# ---- build: compile the TypeScript and bundle it with every dependency --------------------------
# `npm run build` ends with scripts/bundle.ts: esbuild bundles the CLI and the libraries it uses into
# dist/bundle (why: BENCHMARKS.md, "Memory"), so the image needs no node_modules.
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` (the build) needs the sources, copied below, and the `node`
# devDependency's install script would download a second Node: this stage's own Node is the same
# version, and npm's scripts find it on the PATH.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/bundle.ts ./scripts/
COPY src ./src
RUN npm run build

# ---- the image ----------------------------------------------------------------------------------
# Why distroless cc plus the `node` binary of the pinned node image, rather than
# gcr.io/distroless/nodejs24-debian12: distroless tags carry no Node version (nodejs24 moves to
# each new 24.x when it is rebuilt), so only this way is Node pinned by version. cc-debian12 holds
# exactly the libraries the official `node` binary links (glibc, libstdc++, libgcc_s) and
# CA certificates, tzdata and /tmp; no shell, no package manager, no npm. Its `nonroot` tag is used
# for the name only: USER below sets this image's own user. For reproducible releases, pin both
# bases by digest (`FROM ...@sha256:...`).
FROM gcr.io/distroless/cc-debian12:nonroot

ARG NODE_VERSION
LABEL org.opencontainers.image.title="sfn-operator" \
      org.opencontainers.image.description="Serve AWS Step Functions activity tasks from HTTP services: a Kubernetes operator and its pollers" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot" \
      dev.sfn-operator.node.version="${NODE_VERSION}"

# The runtime: only the `node` executable (no npm, corepack or headers).
COPY --from=build /usr/local/bin/node /usr/local/bin/node

# The application: exactly the files `npm pack` publishes (package.json "files": bin, dist/bundle
# with the bundled libraries' THIRD-PARTY-NOTICES.md, README.md; and package.json). No node_modules:
# the bundle holds the libraries. Owned by root and read-only for the user that runs them.
WORKDIR /app
COPY package.json README.md ./
COPY bin ./bin
COPY --from=build /app/dist/bundle ./dist/bundle

# Nothing writes outside /tmp (the pods mount an emptyDir there and keep the root filesystem
# read-only): HOME and TMPDIR point there, so that a library looking for ~/.aws or ~/.kube, or a
# heap snapshot or diagnostic report, finds a writable folder.
ENV NODE_ENV=production \
    HOME=/tmp \
    TMPDIR=/tmp

# uid and gid 1000, by number: the kubelet can verify runAsNonRoot only for a numeric user, and the
# operator's poller pods set runAsUser 1000 (POLLER_UID in src/operator/poller-deployment.ts). The
# image has no passwd entry for it, which nothing here needs (HOME is set above).
USER 1000:1000

EXPOSE 9090
ENTRYPOINT ["node", "/app/bin/sfn-operator.js"]
CMD ["--help"]
