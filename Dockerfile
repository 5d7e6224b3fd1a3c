# Sluice's container image, for those who build with Docker or BuildKit.
# `make image` builds the same image without a daemon (deploy/image, with
# go-containerregistry); deploy/image/image_test.go checks that this file
# and that builder agree (entrypoint, user, ports, files).
#
#   docker build -t sluice .
#   docker run --rm sluice version

# Build: a static binary (no cgo, so no libc to ship), trimmed paths.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/sluice ./cmd/sluice
# The non-root user (distroless' "nonroot", 65532) and a data directory it owns.
RUN mkdir -p /out/etc /out/home/nonroot /out/data /out/tmp \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > /out/etc/passwd \
 && printf 'root:x:0:\nnonroot:x:65532:\n' > /out/etc/group \
 && chmod 0700 /out/home/nonroot /out/data && chmod 1777 /out/tmp

# Run: nothing but the binary, CA certificates (S3 over TLS) and the user.
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/etc/passwd /out/etc/group /etc/
# COPY sets owner 0:0 unless told: the user's own directories need --chown.
COPY --from=build --chown=65532:65532 /out/home /home
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build /out/tmp /tmp
COPY --from=build /out/sluice /sluice
USER 65532:65532
ENV HOME=/home/nonroot
WORKDIR /data
# Kafka and the agent's HTTP (/metrics, /healthz); meta's gRPC and HTTP;
# the zone cache's peer port as the Helm chart sets it.
EXPOSE 8080/tcp 8081/tcp 9092/tcp 9093/tcp 9094/tcp
ENTRYPOINT ["/sluice"]
CMD ["--help"]
