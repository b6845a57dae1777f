module github.com/rtmp-server/rtmp-server

go 1.26
