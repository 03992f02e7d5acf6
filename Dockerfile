# sluice: one static binary.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/sluice ./cmd/sluice

# Root in the image so the /data volume is writable without setup.
FROM gcr.io/distroless/static-debian12
COPY --from=build /out/sluice /usr/local/bin/sluice
# 7400 data plane (gRPC), 7401 control plane (gRPC, bearer token),
# 7402 HTTP: /metrics /livez /readyz /healthz (/debug/pprof only with --pprof)
EXPOSE 7400 7401 7402
VOLUME ["/data"]
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["serve", "--data-dir", "/data"]
