//go:build wasip1

package sdk

import (
	"os"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// configureAtInit runs c.Configure during the module's initializer. On an
// error it reports the message and exits, which fails the initializer: the
// host refuses the module with the message (plugins/ABI.md, section 1).
func configureAtInit(c Configurer) {
	if err := c.Configure(&Host{}); err != nil {
		hostReportError(err.Error())
		os.Exit(int(abi.GuestFailed))
	}
}
