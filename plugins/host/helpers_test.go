package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"testing"
)

func itoa(i int) string { return strconv.Itoa(i) }

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// expectedScan computes what the guest's "scan" action writes for prefix.
func expectedScan(t *testing.T, v View, prefix string) string {
	t.Helper()
	sum := sha256.New()
	n := 0
	err := v.Scan(context.Background(), prefix, "", func(e Entry) bool {
		n++
		fmt.Fprintf(sum, "%s=%d:%s\n", e.Key, len(e.Value), e.Value)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d %s", n, hex.EncodeToString(sum.Sum(nil)))
}
