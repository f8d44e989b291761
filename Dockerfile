# tollgate's production image: a static binary built without the sandbox
# (-tags nosandbox: no dev IdP, no fake providers, no embedded Redis),
# on an empty base with CA roots and time zones copied from the build
# stage, run as uid 65532 (not root) on a read-only root file system.
#
# Image names are plain (golang:1.26); your builder resolves them against
# whichever registry or mirror it is configured for. Pin them by digest in
# your own pipeline.
#
#   docker build -t tollgate .
#   docker run --read-only -p 7420:7420 tollgate serve --production --redis-url rediss://… --public-url https://…

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -tags nosandbox -ldflags "-s -w" -o /out/tollgate ./cmd/tollgate

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /usr/share/zoneinfo /usr/share/zoneinfo
COPY --from=build /out/tollgate /tollgate
USER 65532:65532
EXPOSE 7420 9090
ENTRYPOINT ["/tollgate"]
CMD ["serve", "--production", "--addr", ":7420"]
