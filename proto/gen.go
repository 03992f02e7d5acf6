// Package proto holds sluice's protobuf definitions; the generated Go code is
// committed under sluice/v1. Regenerate it (needs protoc: apt-get install
// protobuf-compiler) with:
//
//	go generate ./proto
package proto

//go:generate sh -c "protoc --plugin=protoc-gen-go=$(go tool -n protoc-gen-go) --plugin=protoc-gen-go-grpc=$(go tool -n protoc-gen-go-grpc) --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative sluice/v1/data.proto sluice/v1/control.proto"
