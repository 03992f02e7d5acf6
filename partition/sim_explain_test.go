package partition

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/sluicedb/sluice/internal/kvmodel"
)

// explain describes a history that is not linearizable: for each key whose
// operations porcupine cannot linearize, its operations in call order.
func explain(ops []porcupine.Operation, base time.Time) string {
	var b strings.Builder
	for _, part := range kvmodel.Model.Partition(ops) {
		if porcupine.CheckOperations(kvmodel.Model, part) {
			continue
		}
		sorted := slices.Clone(part)
		slices.SortFunc(sorted, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
		fmt.Fprintf(&b, "key %s:\n", sorted[0].Input.(kvmodel.Input).Key)
		for _, op := range sorted {
			ret := "never"
			if op.Return != 1<<63-1 {
				ret = time.Duration(op.Return - base.UnixNano()).String()
			}
			fmt.Fprintf(&b, "  client %3d  %10s .. %-10s %s\n", op.ClientId, time.Duration(op.Call-base.UnixNano()), ret, kvmodel.Model.DescribeOperation(op.Input, op.Output))
		}
	}
	return b.String()
}
