package kvcore

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Validate refuses every setting out of range, naming it, and takes the
// zero value and the documented special values (MaxBytes -1).
func TestStoreConfigValidate(t *testing.T) {
	for _, ok := range []StoreConfig{
		{Bucket: "b"},
		{Bucket: "b", History: MaxHistory, MaxAge: time.Hour, MaxBytes: -1, Replicas: 3, Storage: StorageMemory, Discard: DiscardOld},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	for _, tc := range []struct {
		cfg  StoreConfig
		want error
		name string
	}{
		{StoreConfig{Bucket: "a.b"}, ErrInvalidBucket, "a.b"},
		{StoreConfig{Bucket: "b", History: -1}, ErrInvalidConfig, "History -1"},
		{StoreConfig{Bucket: "b", History: MaxHistory + 1}, ErrInvalidConfig, "History 65"},
		{StoreConfig{Bucket: "b", MaxAge: -time.Second}, ErrInvalidConfig, "MaxAge -1s"},
		{StoreConfig{Bucket: "b", MaxBytes: -2}, ErrInvalidConfig, "MaxBytes -2"},
		{StoreConfig{Bucket: "b", Replicas: -1}, ErrInvalidConfig, "Replicas -1"},
		{StoreConfig{Bucket: "b", Storage: 2}, ErrInvalidConfig, "Storage 2"},
		{StoreConfig{Bucket: "b", Discard: 2}, ErrInvalidConfig, "Discard 2"},
	} {
		err := tc.cfg.Validate()
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%+v: %v, want %v naming %q", tc.cfg, err, tc.want, tc.name)
		}
	}
}
