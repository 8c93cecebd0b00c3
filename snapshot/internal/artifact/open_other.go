//go:build !unix

package artifact

// Without O_NOFOLLOW and O_NONBLOCK the listing's check of every payload
// file and the fstat after opening it are the only guards.
const (
	openNoFollow = 0
	openNonBlock = 0
)
