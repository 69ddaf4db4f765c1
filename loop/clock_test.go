package loop

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// The loops' deadlines, idle times and rate limiter must follow the
// monotonic clock: a wall-clock reading (time.Now().UnixNano() and its
// kin strip the monotonic part) makes a clock step close every client or
// stop every timeout. The wall clock cannot be stepped from a test without
// stepping the whole machine's, so this holds the rule on the source.
func TestNoWallClockReadings(t *testing.T) {
	files, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, e := range files {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			switch sel.Sel.Name {
			case "Unix", "UnixNano", "UnixMicro", "UnixMilli":
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == "unix" {
					return true // the golang.org/x/sys/unix package, not a time
				}
				t.Errorf("%s: wall-clock reading .%s(); use monotime()", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
}

func TestMonotimeStartsAboveZeroAndNeverGoesBack(t *testing.T) {
	prev := monotime()
	if prev <= 0 {
		t.Fatalf("monotime() = %d; 0 means never, so the clock must start above it", prev)
	}
	for range 1000 {
		now := monotime()
		if now < prev {
			t.Fatalf("monotime went back: %d after %d", now, prev)
		}
		prev = now
	}
}
