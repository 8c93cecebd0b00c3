package main

import "fmt"

// count is n followed by the noun, singular for one: "1 watch", "2 watches".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
