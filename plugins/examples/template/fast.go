package main

import (
	"bytes"
	"strconv"
	"text/template/parse"
)

// A plan runs a template of the most common shape, a listing of the view
// such as {{range .Entries}}{{.Key}}={{.Value}}{{"\n"}}{{end}}, without
// text/template's reflection, which costs a Go guest tens of microseconds per
// key. It covers text, {{.Watch}}, {{.Revision}}, and {{range .Entries}}
// whose body holds only text, {{.Key}}, {{.Value}} and {{.Revision}}; any
// other template runs on text/template. Both print the same bytes.
type plan []step

// step is one element of a plan: text, a field of the dot, or a range over
// .Entries running body for each entry.
type step struct {
	kind kind
	text string
	body plan // of a range
}

type kind uint8

const (
	text kind = iota
	watchField
	revisionField // of the Data, or of the Entry in a range
	keyField
	valueField
	rangeEntries
)

// fields are the fields a plan prints, on the Data and in a range.
var fields = [2]map[string]kind{
	{"Watch": watchField, "Revision": revisionField},
	{"Key": keyField, "Value": valueField, "Revision": revisionField},
}

// compile returns the plan of a template's tree, or nil when the template
// needs text/template.
func compile(tree *parse.Tree) plan {
	if tree == nil || tree.Root == nil {
		return nil
	}
	p, ok := compileList(tree.Root, false)
	if !ok {
		return nil
	}
	return p
}

// compileList compiles the nodes of list, whose dot is an Entry when
// inRange, the Data otherwise.
func compileList(list *parse.ListNode, inRange bool) (plan, bool) {
	p := plan{}
	for _, n := range list.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			p = append(p, step{kind: text, text: string(n.Text)})
		case *parse.ActionNode:
			scope := 0
			if inRange {
				scope = 1
			}
			k, ok := fields[scope][field(n.Pipe)]
			if !ok {
				return nil, false
			}
			p = append(p, step{kind: k})
		case *parse.RangeNode:
			if inRange || field(n.Pipe) != "Entries" || n.ElseList != nil {
				return nil, false
			}
			body, ok := compileList(n.List, true)
			if !ok {
				return nil, false
			}
			p = append(p, step{kind: rangeEntries, body: body})
		default:
			return nil, false
		}
	}
	return p, true
}

// field returns the name of a pipeline that is just {{.Name}}, or "".
func field(pipe *parse.PipeNode) string {
	if pipe == nil || len(pipe.Decl) != 0 || len(pipe.Cmds) != 1 || len(pipe.Cmds[0].Args) != 1 {
		return ""
	}
	f, ok := pipe.Cmds[0].Args[0].(*parse.FieldNode)
	if !ok || len(f.Ident) != 1 {
		return ""
	}
	return f.Ident[0]
}

// run executes the plan on data, appending to buf.
func (p plan) run(buf *bytes.Buffer, data *Data) error {
	for _, s := range p {
		switch s.kind {
		case text:
			buf.WriteString(s.text)
		case watchField:
			buf.WriteString(data.Watch())
		case revisionField:
			buf.Write(strconv.AppendUint(buf.AvailableBuffer(), data.Revision(), 10))
		case rangeEntries:
			err := data.eachEntry(func(e *Entry) { s.body.runEntry(buf, e) })
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// runEntry executes a range body on one entry.
func (p plan) runEntry(buf *bytes.Buffer, e *Entry) {
	for _, s := range p {
		switch s.kind {
		case text:
			buf.WriteString(s.text)
		case keyField:
			buf.WriteString(e.Key)
		case valueField:
			buf.WriteString(e.Value)
		case revisionField:
			buf.Write(strconv.AppendUint(buf.AvailableBuffer(), e.Revision, 10))
		}
	}
}
