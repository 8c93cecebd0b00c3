package memkv

// DeleteBucket is a temporary stand-in (replaced by the kvcore branch's).
func (c *Conn) DeleteBucket(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.buckets, name)
	return nil
}
