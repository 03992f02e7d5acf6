package client_test

import (
	"go/types"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"
)

// generated is where the generated protobuf packages live.
const generated = "github.com/sluicedb/sluice/proto/"

// Issue 28.11: the client's exported API uses its own types. No exported
// function, method, variable, constant, or exported field of an exported
// type names a type of the generated packages (an alias of one is that type,
// and fails too): a program needs no import of them, and a change of the
// wire format is not a change of the client's API.
func TestExportedAPIHasNoGeneratedTypes(t *testing.T) {
	pkgs, err := packages.Load(&packages.Config{Mode: packages.NeedName | packages.NeedTypes}, "github.com/sluicedb/sluice/client")
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 1 || len(pkgs[0].Errors) > 0 || pkgs[0].Types == nil {
		t.Fatalf("loading the client package: %v", pkgs)
	}
	found := generatedTypesIn(pkgs[0].Types)
	if len(found) > 0 {
		t.Fatalf("the client's exported API names generated types:\n%s", strings.Join(found, "\n"))
	}
	// The check itself finds one: a package whose API names sluicev1.Session.
	probe := types.NewPackage("example.com/probe", "probe")
	gen := types.NewPackage(generated+"sluice/v1", "sluicev1")
	session := types.NewNamed(types.NewTypeName(0, gen, "Session", nil), types.NewStruct(nil, nil), nil)
	params := types.NewTuple(types.NewVar(0, probe, "s", types.NewPointer(session)))
	probe.Scope().Insert(types.NewFunc(0, probe, "Use", types.NewSignatureType(nil, nil, nil, params, nil, false)))
	if got := generatedTypesIn(probe); len(got) != 1 || !strings.Contains(got[0], "Use") {
		t.Fatalf("a func taking *sluicev1.Session: found %q", got)
	}
}

// generatedTypesIn lists, as "where: type", each place pkg's exported API
// names a generated type.
func generatedTypesIn(pkg *types.Package) []string {
	var found []string
	seen := map[types.Type]bool{}
	var walk func(where string, t types.Type)
	walk = func(where string, t types.Type) {
		if seen[t] {
			return
		}
		seen[t] = true
		switch t := t.(type) {
		case *types.Alias:
			walk(where, types.Unalias(t))
		case *types.Named:
			obj := t.Obj()
			if obj.Pkg() != nil && strings.HasPrefix(obj.Pkg().Path(), generated) {
				found = append(found, where+": "+t.String())
				return
			}
			for a := range t.TypeArgs().Types() {
				walk(where, a)
			}
			if obj.Pkg() != pkg { // another package's type: its own API
				return
			}
			walk(where, t.Underlying())
			for m := range t.Methods() {
				if m.Exported() {
					walk(where+"."+m.Name(), m.Type())
				}
			}
			if _, ok := t.Underlying().(*types.Interface); !ok {
				// methods of *T are T's methods too
				ms := types.NewMethodSet(types.NewPointer(t))
				for sel := range ms.Methods() {
					if sel.Obj().Exported() {
						walk(where+"."+sel.Obj().Name(), sel.Type())
					}
				}
			}
		case *types.Pointer:
			walk(where, t.Elem())
		case *types.Slice:
			walk(where, t.Elem())
		case *types.Array:
			walk(where, t.Elem())
		case *types.Map:
			walk(where, t.Key())
			walk(where, t.Elem())
		case *types.Chan:
			walk(where, t.Elem())
		case *types.Signature:
			for v := range t.Params().Variables() {
				walk(where, v.Type())
			}
			for v := range t.Results().Variables() {
				walk(where, v.Type())
			}
		case *types.Struct:
			for f := range t.Fields() {
				if f.Exported() {
					walk(where+"."+f.Name(), f.Type())
				}
			}
		case *types.Interface:
			for m := range t.Methods() {
				if m.Exported() {
					walk(where+"."+m.Name(), m.Type())
				}
			}
		}
	}
	scope := pkg.Scope()
	for _, name := range scope.Names() {
		obj := scope.Lookup(name)
		if !obj.Exported() {
			continue
		}
		walk(pkg.Name()+"."+name, obj.Type())
	}
	return found
}
