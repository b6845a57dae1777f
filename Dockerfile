# Container image of rtmp-server: the static binary and the CA certificates
# it needs for https callbacks and Redis over TLS, nothing else.
#
# The build context holds the binary as ./rtmp-server and the CA bundle as
# ./bin/pkg/ca-certificates.crt: goreleaser's dockers section lays it out
# so, and so does `make image` (packaging/test/image.sh).
#
# Configure it with environment variables, which take precedence over the
# (absent) /etc/rtmp-server.env; every variable is listed in rtmp-server(8)
# and etc/rtmp-server.env.example. For example:
#
#   docker run -d --name rtmp -p 1935:1935 \
#     -e RTMP_PLAY_WHITELIST=10.0.0.0/8 \
#     -e CALLBACK_URL=https://auth.example.com/rtmp -e JWT_SECRET=... \
#     ghcr.io/rtmp-server/rtmp-server
#
# or in a compose file:
#
#   services:
#     rtmp:
#       image: ghcr.io/rtmp-server/rtmp-server
#       ports: ["1935:1935"]
#       environment:
#         RTMP_PLAY_WHITELIST: 10.0.0.0/8
#         LOG_REQUESTS: "YES"
#
# The server runs as uid/gid 65532, not root. RTMPS (SSL_CERT and SSL_KEY
# mounted read-only) listens on SSL_PORT, 443 by default, which Docker lets
# an unprivileged process bind; elsewhere set SSL_PORT=1936 or above.
FROM scratch
COPY bin/pkg/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY rtmp-server /usr/bin/rtmp-server
USER 65532:65532
EXPOSE 1935
ENTRYPOINT ["/usr/bin/rtmp-server"]
