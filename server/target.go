package server

import "strings"

// Target is addr as a gRPC target for a peer or a CLI call: passthrough,
// so that Go's resolver looks the host up when the connection is made,
// unless addr names its scheme. gRPC's own dns resolver also asks for the
// name's TXT records (service config); where no DNS server answers those
// (Docker's embedded resolver with no upstream), every call by host name
// waited out its deadline: a node in docker compose never heard from its
// peers by their service names.
func Target(addr string) string {
	if strings.Contains(addr, "://") {
		return addr
	}
	return "passthrough:///" + addr
}
