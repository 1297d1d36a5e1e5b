# The conveyor image: the `conveyor` binary on a slim runtime, run as a non-root user.
#
#   docker build -t conveyor:0.1.0 .
#   docker run --rm conveyor:0.1.0 --help
#
# CUDA variant: build and run on NVIDIA's images of the same distribution, e.g.
#   docker build -t conveyor:0.1.0-cuda \
#     --build-arg BUILD_IMAGE=nvidia/cuda:12.4.1-devel-ubuntu22.04 \
#     --build-arg RUNTIME_IMAGE=nvidia/cuda:12.4.1-runtime-ubuntu22.04 .
# (Neither variant has been built yet: the development machine has no container daemon.
# The package names come from Debian 12; an Ubuntu-based CUDA image may need others.)
# CMake finds the toolkit in the devel image and builds the CUDA backend; the CUDA libraries
# come from the runtime image, not from the copy below. Run it with the NVIDIA container
# runtime (Kubernetes: the NVIDIA device plugin and `nvidia.com/gpu` limits).
ARG BUILD_IMAGE=debian:12
ARG RUNTIME_IMAGE=debian:12-slim

# ---- build: the toolchain and the libraries of scripts/setup.sh, a Release build -------
FROM ${BUILD_IMAGE} AS build
ARG DEBIAN_FRONTEND=noninteractive
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
COPY scripts/setup.sh scripts/setup.sh
# The package list of scripts/setup.sh (its PACKAGES=(...) array), so the two stay one list.
RUN eval "$(sed -n '/^PACKAGES=(/,/)/p' scripts/setup.sh)" \
 && apt-get update \
 && apt-get install -y --no-install-recommends "${PACKAGES[@]}" \
 && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build --target conveyor -j"$(nproc)" \
 && install -D -m 0755 /build/bin/conveyor /opt/conveyor/bin/conveyor \
 && scripts/gpu/pack-for-gpu.sh /opt/conveyor /opt/conveyor/bin/conveyor

# ---- runtime: the binary and the shared libraries it needs ------------------------------
FROM ${RUNTIME_IMAGE} AS runtime
# /opt/conveyor/lib: the libraries ldd named that the base image lacks (ZeroMQ, UCX, yaml-cpp,
# prometheus-cpp, PCRE2, ...) and UCX's transport modules, as scripts/gpu/pack-for-gpu.sh packs
# them; glibc, libstdc++ and CUDA come from the base image.
COPY --from=build /opt/conveyor /opt/conveyor
ENV PATH=/opt/conveyor/bin:$PATH \
    LD_LIBRARY_PATH=/opt/conveyor/lib \
    UCX_MODULE_DIR=/opt/conveyor/lib/ucx \
    CONVEYOR_HOME=/var/cache/conveyor
RUN groupadd --system --gid 10001 conveyor \
 && useradd --system --uid 10001 --gid conveyor --home-dir /var/lib/conveyor --shell /usr/sbin/nologin conveyor \
 && mkdir -p /var/lib/conveyor /var/cache/conveyor/models /etc/conveyor/keys \
 && chown -R conveyor:conveyor /var/lib/conveyor /var/cache/conveyor \
 && conveyor --help >/dev/null
USER 10001:10001
WORKDIR /var/lib/conveyor
# Producers, workers, metrics (/metrics, /livez, /readyz).
EXPOSE 5555 5556 9400
ENTRYPOINT ["conveyor"]
CMD ["--help"]
