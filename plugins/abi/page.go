package abi

// PageWriter builds one page for view_scan or output_list under the
// output-buffer convention: a page holds whole items only, at most capacity
// bytes in all; if not even the first item fits, nothing is written and the
// host returns the capacity the guest needs instead.
//
// soft bounds the page size once it holds at least one item, so a host can
// keep pages small even when the guest offers a huge buffer; the first item
// may use the full capacity. A page may hold fewer items than would fit.
//
// Use it as: for each item in order, stop at the first Add that returns
// false; then call Finish.
type PageWriter struct {
	limit int
	soft  int
	buf   []byte
	count uint32
	more  bool
	need  int
}

// NewPageWriter returns a writer for a guest buffer of capacity bytes.
func NewPageWriter(capacity, soft int) *PageWriter {
	return &PageWriter{limit: capacity, soft: soft, buf: make([]byte, PageHeaderSize, max(PageHeaderSize, min(capacity, soft, 64<<10)))}
}

// NewPageWriterInto returns a writer that encodes the page directly into
// dst, the guest buffer of len(dst) bytes, with no copy of its own: items
// are written only once they fit and the header by Finish, so a page that
// Finish refuses leaves dst untouched, but items added before an abandoned
// page stay written.
func NewPageWriterInto(dst []byte, soft int) *PageWriter {
	if len(dst) < PageHeaderSize { // Finish reports the header's size as needed
		return &PageWriter{limit: len(dst), soft: soft, buf: make([]byte, PageHeaderSize)}
	}
	return &PageWriter{limit: len(dst), soft: soft, buf: dst[:PageHeaderSize:len(dst)]}
}

// AddRecord appends r if it fits and reports whether it did. After a false
// result the page is closed and every later Add returns false.
func (w *PageWriter) AddRecord(r Record) bool {
	if !w.fits(r.Size()) {
		return false
	}
	w.buf = AppendRecord(w.buf, r)
	w.count++
	return true
}

// AddDirEntry appends e if it fits and reports whether it did; see AddRecord.
func (w *PageWriter) AddDirEntry(e DirEntry) bool {
	if !w.fits(e.Size()) {
		return false
	}
	w.buf = AppendDirEntry(w.buf, e)
	w.count++
	return true
}

func (w *PageWriter) fits(size int) bool {
	if w.more {
		return false
	}
	limit := w.limit
	if w.count > 0 {
		limit = min(limit, w.soft)
	}
	if len(w.buf)+size > limit {
		w.more = true
		if w.count == 0 {
			w.need = PageHeaderSize + size
		}
		return false
	}
	return true
}

// Stop ends the page early, for hosts that bound pages by their own rule
// (an item count, say): Finish then reports that more items follow. Call it
// only when another item exists.
func (w *PageWriter) Stop() { w.more = true }

// Finish returns the encoded page, or (nil, need) when the first item did not
// fit: need is the buffer capacity the guest must offer to receive it.
// An empty page (no items, no more) is a valid result.
func (w *PageWriter) Finish() (page []byte, need int) {
	if w.need > 0 {
		return nil, w.need
	}
	if len(w.buf) > w.limit { // not even room for an empty page
		return nil, PageHeaderSize
	}
	PutPageHeader(w.buf, Page{Count: w.count, More: w.more})
	return w.buf, 0
}
