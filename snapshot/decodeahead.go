package snapshot

// decodedRun is a run of consecutive decoded records and the image prefix
// they lie in (the records' slices alias it).
type decodedRun struct {
	img  []byte
	recs []record
}

// decodedRunLen is how many records a decodedRun holds: enough to make the
// hand-over between goroutines rare, few enough to stay in cache.
const decodedRunLen = 1024

// decodeAhead decodes the records of an image of which img is a prefix
// (more as for replayParts) on its own goroutine and hands them on in runs,
// so that replay folds the records on one core while the next ones are
// parsed and their CRCs checked on the other. Ranging over runs ends when
// decoding stopped; only then may the caller read the decoder, and it must
// hand every run back through done once it is finished with it.
func decodeAhead(img []byte, more func(n int) []byte) (d *decoder, runs <-chan *decodedRun, done chan<- *decodedRun) {
	d = newDecoder(img)
	out := make(chan *decodedRun, 4)
	free := make(chan *decodedRun, 6)
	go func() {
		defer close(out)
		run := &decodedRun{recs: make([]record, 0, decodedRunLen)}
		for {
			if len(run.recs) == decodedRunLen {
				run.img = d.buf
				out <- run
				select {
				case run = <-free:
					run.recs = run.recs[:0]
				default:
					run = &decodedRun{recs: make([]record, 0, decodedRunLen)}
				}
			}
			n := len(run.recs)
			run.recs = run.recs[:n+1]
			if d.next(&run.recs[n]) {
				continue
			}
			run.recs = run.recs[:n]
			// Stopped: refused, or at the end of the bytes read so far,
			// which is the end of the image unless more come.
			if d.err != nil {
				break
			}
			next := more(len(d.buf))
			if len(next) == len(d.buf) {
				break
			}
			d.buf, d.torn = next, false
		}
		run.img = d.buf
		out <- run
	}()
	return d, out, free
}
