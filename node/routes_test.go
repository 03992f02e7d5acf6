package node

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// A node that cannot read the registry's end (cut off from Kafka; here the
// embedded broker refuses its ListOffsets) serves no routing table: its
// table may still name it the owner of partitions moved away, and clients
// would keep sending it their keys. GetRoutes answers UNAVAILABLE, so a
// client asks another node, and serves again once the registry can be read.
func TestGetRoutesRefusedWhileTheRegistryCannotBeRead(t *testing.T) {
	n := startNode(t, Config{Brokers: []string{}, EmbeddedKafkaAddr: "127.0.0.1:0", Cluster: "routescut", Lease: time.Second})
	getRoutes := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := n.data.GetRoutes(ctx, &sluicev1.GetRoutesRequest{})
		return err
	}
	if err := getRoutes(); err != nil {
		t.Fatal(err)
	}
	var cut atomic.Bool
	n.embedded.ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		n.embedded.KeepControl()
		if cut.Load() {
			return nil, errors.New("cut off"), true // the connection closes
		}
		return nil, nil, false
	})
	cut.Store(true)
	var last error
	eventually(t, "GetRoutes refused while the registry cannot be read", func() bool {
		last = getRoutes()
		return status.Code(last) == codes.Unavailable && strings.Contains(status.Convert(last).Message(), "routing table may be stale")
	})
	t.Logf("cut off: %v", last)
	cut.Store(false)
	eventually(t, "GetRoutes served once the registry can be read", func() bool { last = getRoutes(); return last == nil })
}
