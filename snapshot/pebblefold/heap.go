package pebblefold

// heapItem is an element of a min-heap: a pointer to T, ordered by less.
type heapItem[T any] interface {
	*T
	less(*T) bool
}

// down restores the order of the min-heap h from element i down.
func down[T any, P heapItem[T]](h []T, i int) {
	for {
		m, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && P(&h[l]).less(&h[m]) {
			m = l
		}
		if r < len(h) && P(&h[r]).less(&h[m]) {
			m = r
		}
		if m == i {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
