package agent

import (
	"fmt"
	"math"
	"math/big"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// maxNumber and minNumber bound the magnitude of the numbers a
// configuration may write: HCL numbers are arbitrary-precision, and turning
// one such as 1e9999999 or 1e-9999999 into the string a setting wants takes
// minutes and gigabytes. No setting needs more than a float64 holds.
var (
	maxNumber = big.NewFloat(math.MaxFloat64)
	minNumber = big.NewFloat(math.SmallestNonzeroFloat64)
)

// checkNumbers refuses a number literal, or arithmetic on literals, whose
// magnitude is beyond maxNumber or, but for 0, below minNumber, before
// anything converts it.
func checkNumbers(f *hcl.File) hcl.Diagnostics {
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	w := &numberWalker{}
	hclsyntax.Walk(body, w)
	return w.diags
}

// numberWalker checks numbers bottom-up, so an expression is evaluated only
// once its operands are known to be in range; it stops at the first error.
type numberWalker struct{ diags hcl.Diagnostics }

func (w *numberWalker) Enter(hclsyntax.Node) hcl.Diagnostics { return nil }

func (w *numberWalker) Exit(n hclsyntax.Node) hcl.Diagnostics {
	if w.diags.HasErrors() {
		return nil
	}
	switch e := n.(type) {
	case *hclsyntax.LiteralValueExpr, *hclsyntax.BinaryOpExpr, *hclsyntax.UnaryOpExpr:
		expr := e.(hclsyntax.Expression)
		v, diags := expr.Value(evalContext)
		if diags.HasErrors() || !v.IsKnown() || v.IsNull() || v.Type() != cty.Number {
			return nil // decoding reports it, or there is no number
		}
		if a := new(big.Float).Abs(v.AsBigFloat()); a.Cmp(maxNumber) > 0 || (a.Sign() != 0 && a.Cmp(minNumber) < 0) {
			w.diags = append(w.diags, errAt(expr.Range(), "Number out of range", fmt.Sprintf("No setting takes a number beyond ±%g or, but for 0, closer to 0 than %g.", math.MaxFloat64, math.SmallestNonzeroFloat64)))
		}
	}
	return nil
}
