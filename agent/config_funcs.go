package agent

import (
	"fmt"
	"maps"

	"github.com/hashicorp/go-cty-funcs/filesystem"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
)

// fileEvalContext adds file functions to evalContext, with relative paths
// resolved against dir, the directory of the configuration:
//
//	file("nginx.conf.tmpl")                 the file's text (UTF-8)
//	filebase64("cert.der")                  the file's bytes in base64
//	templatefile("motd.tmpl", { name = "x" }) the file rendered as an HCL template with those variables
//
// so that a plugin's config can take a template from a file.
func fileEvalContext(dir string) *hcl.EvalContext {
	ctx := evalContext.NewChild()
	ctx.Functions = map[string]function.Function{
		"file":       filesystem.MakeFileFunc(dir, false),
		"filebase64": filesystem.MakeFileFunc(dir, true),
	}
	// templatefile's templates may call every function but itself.
	inner := maps.Clone(evalContext.Functions)
	maps.Copy(inner, ctx.Functions)
	ctx.Functions["templatefile"] = templateFileFunc(dir, inner)
	return ctx
}

// templateFileFunc renders a file as an HCL template (${var}, %{ if }...),
// with the variables of an object or map.
func templateFileFunc(dir string, funcs map[string]function.Function) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{
			{Name: "path", Type: cty.String},
			{Name: "vars", Type: cty.DynamicPseudoType},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			path, vars := args[0], args[1]
			src, err := filesystem.File(dir, path)
			if err != nil {
				return cty.NilVal, err
			}
			if !vars.Type().IsObjectType() && !vars.Type().IsMapType() {
				return cty.NilVal, function.NewArgErrorf(1, "vars must be an object such as { name = \"value\" }")
			}
			expr, diags := hclsyntax.ParseTemplate([]byte(src.AsString()), path.AsString(), hcl.InitialPos)
			if diags.HasErrors() {
				return cty.NilVal, diags
			}
			ctx := &hcl.EvalContext{Variables: map[string]cty.Value{}, Functions: funcs}
			if !vars.IsNull() {
				for it := vars.ElementIterator(); it.Next(); {
					k, v := it.Element()
					ctx.Variables[k.AsString()] = v
				}
			}
			val, diags := expr.Value(ctx)
			if diags.HasErrors() {
				return cty.NilVal, diags
			}
			s, err := convert.Convert(val, cty.String)
			if err != nil {
				return cty.NilVal, fmt.Errorf("%s: the template's result is not a string: %w", path.AsString(), err)
			}
			return s, nil
		},
	})
}
