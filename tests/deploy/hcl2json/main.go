// hcl2json prints HCL native-syntax files as JSON, so tests can check a Packer template's
// invariants without Packer: a body is {"attributes": {name: {"expr", "value"}}, "blocks":
// [{"type", "labels", "body"}]}, where "expr" is the expression's source text and "value" its
// value when it is a constant (no variables, no function calls). A syntax error is printed
// with its location and exits 1. Built against Debian's golang-github-hashicorp-hcl-v2-dev.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

type attribute struct {
	Expr  string          `json:"expr"`
	Value json.RawMessage `json:"value,omitempty"`
}

type block struct {
	Type   string   `json:"type"`
	Labels []string `json:"labels"`
	Body   *body    `json:"body"`
}

type body struct {
	Attributes map[string]attribute `json:"attributes"`
	Blocks     []block              `json:"blocks"`
}

func constant(expr hclsyntax.Expression) json.RawMessage {
	if len(expr.Variables()) != 0 {
		return nil
	}
	v, diags := expr.Value(nil)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return nil
	}
	out, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return nil
	}
	return out
}

func convert(b *hclsyntax.Body, src []byte) *body {
	out := &body{Attributes: map[string]attribute{}, Blocks: []block{}}
	for name, attr := range b.Attributes {
		out.Attributes[name] = attribute{
			Expr:  string(attr.Expr.Range().SliceBytes(src)),
			Value: constant(attr.Expr),
		}
	}
	for _, blk := range b.Blocks {
		labels := blk.Labels
		if labels == nil {
			labels = []string{}
		}
		out.Blocks = append(out.Blocks, block{Type: blk.Type, Labels: labels, Body: convert(blk.Body, src)})
	}
	return out
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: hcl2json FILE.hcl")
		os.Exit(2)
	}
	src, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	file, diags := hclsyntax.ParseConfig(src, os.Args[1], hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() {
		for _, d := range diags {
			fmt.Fprintln(os.Stderr, d.Error())
		}
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(convert(file.Body.(*hclsyntax.Body), src)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
