package deploycheck

import (
	"context"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// Service is one AWS service whose calls the IAM policy must cover.
type Service struct {
	// Name is both the IAM action prefix and the SDK package name.
	Name    string
	PkgPath string
	// Ops are the API operation names, from the client's method set.
	Ops map[string]bool
	// Ctors maps a paginator or waiter constructor (NewScanPaginator,
	// NewTableExistsWaiter) to the operations it calls, read from the SDK
	// source: its first parameter is a small XxxAPIClient interface.
	Ctors map[string][]string
}

// Services returns the four services the fleet talks to, with their
// operation names taken by reflection from the SDK clients.
func Services() []*Service {
	mk := func(name, pkg string, client any) *Service {
		return &Service{Name: name, PkgPath: pkg, Ops: Operations(client), Ctors: map[string][]string{}}
	}
	return []*Service{
		mk("kinesis", "github.com/aws/aws-sdk-go-v2/service/kinesis", &kinesis.Client{}),
		mk("dynamodb", "github.com/aws/aws-sdk-go-v2/service/dynamodb", &dynamodb.Client{}),
		mk("sns", "github.com/aws/aws-sdk-go-v2/service/sns", &sns.Client{}),
		mk("cloudwatch", "github.com/aws/aws-sdk-go-v2/service/cloudwatch", &cloudwatch.Client{}),
	}
}

// Operations lists the API operations of an aws-sdk-go-v2 client: the
// methods shaped Op(context.Context, *OpInput, ...func(*Options))
// (*OpOutput, error).
func Operations(client any) map[string]bool {
	ctxType := reflect.TypeFor[context.Context]()
	t := reflect.TypeOf(client)
	ops := map[string]bool{}
	for i := range t.NumMethod() {
		m := t.Method(i)
		mt := m.Type // receiver is In(0)
		if mt.NumIn() != 4 || !mt.IsVariadic() || mt.NumOut() != 2 || mt.In(1) != ctxType {
			continue
		}
		in, out := mt.In(2), mt.Out(0)
		if in.Kind() != reflect.Pointer || out.Kind() != reflect.Pointer {
			continue
		}
		if in.Elem().Name() == m.Name+"Input" && out.Elem().Name() == m.Name+"Output" {
			ops[m.Name] = true
		}
	}
	return ops
}

// LoadCtors fills s.Ctors by parsing the SDK package source in dir.
func (s *Service) LoadCtors(dir string) error {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("%s: read sdk source: %w", s.Name, err)
	}
	ifaces := map[string][]string{}  // XxxAPIClient -> methods
	ctorParam := map[string]string{} // NewXxx -> first parameter type name
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("%s: parse sdk source: %w", s.Name, err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.GenDecl:
				for _, sp := range d.Specs {
					ts, ok := sp.(*ast.TypeSpec)
					if !ok {
						continue
					}
					it, ok := ts.Type.(*ast.InterfaceType)
					if !ok || !strings.HasSuffix(ts.Name.Name, "APIClient") {
						continue
					}
					for _, m := range it.Methods.List {
						for _, n := range m.Names {
							ifaces[ts.Name.Name] = append(ifaces[ts.Name.Name], n.Name)
						}
					}
				}
			case *ast.FuncDecl:
				name := d.Name.Name
				if d.Recv != nil || !strings.HasPrefix(name, "New") ||
					!(strings.HasSuffix(name, "Paginator") || strings.HasSuffix(name, "Waiter")) {
					continue
				}
				if ps := d.Type.Params.List; len(ps) > 0 {
					if id, ok := ps[0].Type.(*ast.Ident); ok {
						ctorParam[name] = id.Name
					}
				}
			}
		}
	}
	for ctor, param := range ctorParam {
		for _, op := range ifaces[param] {
			if s.Ops[op] {
				s.Ctors[ctor] = append(s.Ctors[ctor], op)
			}
		}
	}
	if len(s.Ctors) == 0 {
		return fmt.Errorf("%s: no paginator or waiter constructors found in %s", s.Name, dir)
	}
	return nil
}

// Call is one AWS operation call site found in source.
type Call struct {
	Service, Op string
	Pos         string // file:line, relative to the scanned root
	Via         string // "" for a direct call, else the paginator/waiter constructor
}

// Action is the IAM action the call needs.
func (c Call) Action() string { return c.Service + ":" + c.Op }

// Package is one parsed Go package directory.
type Package struct {
	Path    string // import path
	Dir     string
	Imports []string // imports of its non-test files
	files   []*ast.File
	fset    *token.FileSet
	root    string
}

// ParsePackages parses the non-test Go files of every package under root
// (skipping testdata, vendor, hidden and underscore directories and files
// excluded by build constraints). modPath is the module path of root.
func ParsePackages(root, modPath string) (map[string]*Package, error) {
	pkgs := map[string]*Package{}
	fset := token.NewFileSet()
	ctx := build.Default
	ctx.CgoEnabled = false
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || name == "vendor" || name == "node_modules" ||
				strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		dir := filepath.Dir(path)
		if ok, err := ctx.MatchFile(dir, name); err != nil || !ok {
			return nil // excluded by build constraints: not compiled either
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("parse %s: %w", path, err)
		}
		rel, _ := filepath.Rel(root, dir)
		ip := modPath
		if rel != "." {
			ip = modPath + "/" + filepath.ToSlash(rel)
		}
		p := pkgs[ip]
		if p == nil {
			p = &Package{Path: ip, Dir: dir, fset: fset, root: root}
			pkgs[ip] = p
		}
		p.files = append(p.files, f)
		for _, im := range f.Imports {
			s, _ := strconv.Unquote(im.Path.Value)
			if !slices.Contains(p.Imports, s) {
				p.Imports = append(p.Imports, s)
			}
		}
		return nil
	})
	return pkgs, err
}

// Reachable returns the import paths in pkgs reachable from start
// (start included), following imports that are themselves in pkgs.
func Reachable(pkgs map[string]*Package, start ...string) []string {
	seen := map[string]bool{}
	var visit func(string)
	visit = func(p string) {
		if seen[p] || pkgs[p] == nil {
			return
		}
		seen[p] = true
		for _, im := range pkgs[p].Imports {
			visit(im)
		}
	}
	for _, s := range start {
		visit(s)
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// SkipFile decides whether a file's calls are left out (see FindCalls).
type SkipFile func(filename string) bool

// FindCalls lists the AWS operation calls in p. A selector call x.Op(a, b,
// ...) counts as operation Op of service S when Op is one of S's
// operations, the call has at least the (ctx, input) arguments, and the
// package imports S's SDK package (any file of it: a consumer-declared
// interface in one file, the call in another). When more than one
// imported service has an operation of that name, the second argument
// (&svc.OpInput{...}) decides; failing that the call is attributed to
// every candidate, which errs towards "must be granted". Calls of
// NewXxxPaginator / NewXxxWaiter constructors count as the operations the
// paginator or waiter calls.
func FindCalls(p *Package, services []*Service, skip SkipFile) []Call {
	var calls []Call
	pkgImports := map[string]*Service{} // import path -> service
	for _, s := range services {
		if slices.Contains(p.Imports, s.PkgPath) {
			pkgImports[s.PkgPath] = s
		}
	}
	if len(pkgImports) == 0 {
		return nil
	}
	for _, f := range p.files {
		filename := p.fset.Position(f.Package).Filename
		if skip != nil && skip(filename) {
			continue
		}
		// Local names of the SDK packages in this file.
		local := map[string]*Service{}
		for _, im := range f.Imports {
			path, _ := strconv.Unquote(im.Path.Value)
			s := pkgImports[path]
			if s == nil {
				continue
			}
			name := s.Name
			if im.Name != nil {
				name = im.Name.Name
			}
			local[name] = s
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			pos := p.fset.Position(call.Pos())
			rel, _ := filepath.Rel(p.root, pos.Filename)
			where := fmt.Sprintf("%s:%d", filepath.ToSlash(rel), pos.Line)
			name := sel.Sel.Name
			if x, ok := sel.X.(*ast.Ident); ok {
				if s := local[x.Name]; s != nil {
					for _, op := range s.Ctors[name] {
						calls = append(calls, Call{Service: s.Name, Op: op, Pos: where, Via: name})
					}
					return true
				}
			}
			if len(call.Args) < 2 {
				return true
			}
			var candidates []*Service
			for _, s := range pkgImports {
				if s.Ops[name] {
					candidates = append(candidates, s)
				}
			}
			if len(candidates) > 1 {
				if s := inputService(call.Args[1], name, local); s != nil {
					candidates = []*Service{s}
				}
			}
			for _, s := range candidates {
				calls = append(calls, Call{Service: s.Name, Op: name, Pos: where})
			}
			return true
		})
	}
	slices.SortFunc(calls, func(a, b Call) int { return strings.Compare(a.Action()+a.Pos, b.Action()+b.Pos) })
	return calls
}

// inputService recognises &svc.OpInput{...} / svc.OpInput{...}.
func inputService(arg ast.Expr, op string, local map[string]*Service) *Service {
	if u, ok := arg.(*ast.UnaryExpr); ok && u.Op == token.AND {
		arg = u.X
	}
	cl, ok := arg.(*ast.CompositeLit)
	if !ok {
		return nil
	}
	sel, ok := cl.Type.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != op+"Input" {
		return nil
	}
	if x, ok := sel.X.(*ast.Ident); ok {
		return local[x.Name]
	}
	return nil
}

// UsesIdent reports whether any file of p mentions an identifier or
// selector containing sub (e.g. "EnhancedFanOut").
func UsesIdent(p *Package, sub string) bool {
	found := false
	for _, f := range p.files {
		ast.Inspect(f, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok && strings.Contains(id.Name, sub) {
				found = true
			}
			return !found
		})
	}
	return found
}

// GoList runs `go list -f '{{.Dir}}'` (module mode, in dir) for packages
// or, with -m, modules, and returns one directory per argument.
func GoList(ctx context.Context, dir string, module bool, args ...string) ([]string, error) {
	cmdArgs := []string{"list", "-f", "{{.Dir}}"}
	if module {
		cmdArgs = append(cmdArgs, "-m")
	}
	cmd := exec.CommandContext(ctx, "go", append(cmdArgs, args...)...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return nil, fmt.Errorf("go list %s: %w: %s", strings.Join(args, " "), err, ee.Stderr)
		}
		return nil, fmt.Errorf("go list %s: %w", strings.Join(args, " "), err)
	}
	dirs := strings.Fields(string(out))
	if len(dirs) != len(args) {
		return nil, fmt.Errorf("go list %s: got %d directories", strings.Join(args, " "), len(dirs))
	}
	return dirs, nil
}
