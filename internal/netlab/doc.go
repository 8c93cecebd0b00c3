// Package netlab gives tests hosts of their own: network namespaces joined
// by veth links that a test can cut and heal, so a partition is a link
// going down, not a process being killed. Programs run on a host under
// [Host.Wrap]; the test itself reaches a host's listeners with
// [Host.Dial]. It needs Linux, root and iproute2's ip; elsewhere the
// package is empty.
//
// Hosts talk to each other only over their links: this machine's own
// namespace is not one of them (its outbound connections may be relayed
// by the sandbox rather than routed over a link).
package netlab
