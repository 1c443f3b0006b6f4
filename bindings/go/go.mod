module github.com/fidius-host/libfidius_host/bindings/go

go 1.26.8
