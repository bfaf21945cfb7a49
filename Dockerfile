# logviewer and fakelog as static binaries on an empty image.
#
#   docker build -t logviewer .
#   docker run -p 10514:10514/tcp -p 10514:10514/udp -p 8080:8080 -v logviewer-data:/var/lib/logviewer logviewer
#
# With no arguments the daemon keeps its history on disk (--data-dir) in the
# volume /var/lib/logviewer, so it survives restarts; arguments replace that
# (a --redis node keeps its history in Redis).
#   docker run --entrypoint /usr/local/bin/fakelog logviewer --addr host:10514

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ENV CGO_ENABLED=0
RUN go build -trimpath -ldflags="-s -w" -o /out/logviewer ./cmd/logviewer \
 && go build -trimpath -ldflags="-s -w" -o /out/fakelog ./cmd/fakelog \
 && mkdir -p /out/data

FROM scratch
# CA certificates for rediss:// (Redis over TLS).
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/logviewer /out/fakelog /usr/local/bin/
# The history's directory, owned by the user below (scratch has no mkdir).
COPY --from=build --chown=65532:65532 /out/data /var/lib/logviewer
VOLUME ["/var/lib/logviewer"]
# An unprivileged user: the ports are above 1024.
USER 65532:65532
EXPOSE 10514/tcp 10514/udp 8080/tcp
ENTRYPOINT ["/usr/local/bin/logviewer"]
CMD ["--data-dir", "/var/lib/logviewer"]
