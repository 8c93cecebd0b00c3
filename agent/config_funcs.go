package agent

import (
	"fmt"
	"maps"
	"path/filepath"

	"github.com/hashicorp/go-cty-funcs/filesystem"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/mitchellh/go-homedir"
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
// so that a plugin's config can take a template from a file. Each file a
// function reads is passed to read: it is part of the configuration, and
// trusted as such (see Config.Inputs).
func fileEvalContext(dir string, read func(path string)) *hcl.EvalContext {
	ctx := evalContext.NewChild()
	ctx.Functions = map[string]function.Function{
		"file":       reading(filesystem.MakeFileFunc(dir, false), dir, read),
		"filebase64": reading(filesystem.MakeFileFunc(dir, true), dir, read),
	}
	// templatefile's templates may call every function but itself.
	inner := maps.Clone(evalContext.Functions)
	maps.Copy(inner, ctx.Functions)
	ctx.Functions["templatefile"] = reading(templateFileFunc(dir, inner), dir, read)
	return ctx
}

// reading wraps f, a function whose first argument is a file's path, to
// pass read the path of each file it read, resolved as filesystem's
// functions resolve it (~ expanded, relative to dir).
func reading(f function.Function, dir string, read func(path string)) function.Function {
	return function.New(&function.Spec{
		Params: f.Params(),
		Type:   f.ReturnTypeForValues,
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			v, err := f.Call(args)
			if err != nil {
				return v, err
			}
			if path, herr := homedir.Expand(args[0].AsString()); herr == nil {
				if !filepath.IsAbs(path) {
					path = filepath.Join(dir, path)
				}
				read(filepath.Clean(path))
			}
			return v, nil
		},
	})
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
